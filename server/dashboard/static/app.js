// sparsemod dashboard: one page, three views chosen by the URL's fragment
//   #/               the searches            (searches.js)
//   #/searches/ID    one search: front, hypervolume, trials, lineage, config   (search.js)
//   #/trials/ID      one trial: params, objectives, history, downloads          (trial.js)
// Every figure comes from the JSON API (/api/v1) with the token kept for this tab (api.js).

import { api, app, TOKEN_KEY, Unauthorized } from "./api.js";
import { searchView } from "./search.js";
import { searchesView } from "./searches.js";
import { trialView } from "./trial.js";
import { el, main, setLive, stopPolling } from "./ui.js";

function showLogin(message) {
  stopPolling();
  app.view += 1;
  setLive("");
  const form = document.getElementById("login").content.cloneNode(true);
  main().replaceChildren(form);
  document.getElementById("logout").hidden = true;
  if (message) document.getElementById("login-error").textContent = message;
  document.getElementById("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    app.token = document.getElementById("token").value.trim();
    try {
      await api("/searches?limit=1");
    } catch (e) {
      app.token = null;
      document.getElementById("login-error").textContent =
        e instanceof Unauthorized ? "The server refused this token." : e.message;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, app.token);
    route();
  });
}

function forget() {
  sessionStorage.removeItem(TOKEN_KEY);
  app.token = null;
  showLogin();
}


async function route() {
  stopPolling();
  const view = ++app.view;
  document.getElementById("logout").hidden = !app.token;
  try {
    if (!app.vocab) {
      const [vocab, health] = await Promise.all([api("/vocabulary"), api("/health")]);
      app.vocab = vocab;
      app.readOnly = health.read_only;
    }
    const hash = location.hash || "#/";
    let m;
    if ((m = hash.match(/^#\/searches\/(\d+)$/))) await searchView(view, Number(m[1]));
    else if ((m = hash.match(/^#\/trials\/(\d+)$/))) await trialView(view, Number(m[1]));
    else await searchesView(view);
    setLive(`updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    if (e instanceof Unauthorized) {
      app.vocab = null;
      if (app.token) sessionStorage.removeItem(TOKEN_KEY);
      app.token = null;
      showLogin();
      return;
    }
    main().replaceChildren(el("p", { class: "error", id: "page-error" }, e.message));
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("sparsemod:unauthorized", () => showLogin());
document.getElementById("logout").addEventListener("click", forget);
route();
