// sparsemod dashboard: requests to the JSON API, with the token kept for this tab.

export const API = "/api/v1";
export const BULK = 500; // the API's largest page
export const TOKEN_KEY = "sparsemod-token";

// What the page knows across views.
export const app = {
  token: sessionStorage.getItem(TOKEN_KEY),
  vocab: null, // GET /vocabulary
  readOnly: true,
  timer: null,
  view: 0, // bumped on every navigation: a late answer of an old view is dropped
};

export class Unauthorized extends Error {}
// ------------------------------------------------------------------ requests

export async function request(path, options = {}) {
  const headers = {};
  if (app.token) headers.Authorization = `Bearer ${app.token}`;
  const r = await fetch(API + path, { ...options, headers });
  if (r.status === 401) throw new Unauthorized();
  if (!r.ok) {
    let detail = r.statusText;
    try {
      detail = (await r.json()).detail;
    } catch (_) { /* not JSON */ }
    throw new Error(`${r.status}: ${detail}`);
  }
  return r;
}

export async function api(path, options) {
  return (await request(path, options)).json();
}

export async function allTrials(searchId) {
  const first = await api(`/searches/${searchId}/trials?limit=${BULK}`);
  const pages = [];
  for (let offset = BULK; offset < first.count; offset += BULK) {
    pages.push(api(`/searches/${searchId}/trials?limit=${BULK}&offset=${offset}`));
  }
  return first.data.concat(...(await Promise.all(pages)).map((p) => p.data));
}

export async function download(path, fallback) {
  const r = await request(path);
  const disposition = r.headers.get("content-disposition") || "";
  const match = disposition.match(/filename="([^"]+)"/);
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = match ? match[1] : fallback;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
