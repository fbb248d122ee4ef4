"""An artifact as C source: a ``.h`` / ``.c`` pair to paste into a firmware project.

The ``.c`` holds the artifact's bytes as a 16-byte aligned ``const unsigned char`` array
(TFLM and ExecuTorch read the flatbuffer / program in place, and want it aligned); the
``.h`` declares it, its length, the arena size the runtime needs, and the input's and
output's shape, scale and zero point (``real = scale * (q - zero_point)``).
"""

from __future__ import annotations

import re

from sparsemod.deploy.base import Artifact, DeployError, TensorSpec

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def c_name(name: str) -> str:
    """``name`` as a C identifier: other characters become ``_``, a leading digit gets ``m_``.

    Raises:
        DeployError: nothing is left of the name.
    """
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if ident and ident[0].isdigit():
        ident = "m_" + ident
    if not ident or not _IDENT.match(ident):
        raise DeployError(f"c-array: {name!r} gives no C identifier")
    return ident


def _tensor_lines(prefix: str, spec: TensorSpec) -> list[str]:
    dims = ", ".join(str(d) for d in spec.shape)
    lines = [
        f"/* {spec.name}: {spec.dtype} */",
        f"#define {prefix}_DIMS {len(spec.shape)}",
        f"static const int {prefix.lower()}_shape[{len(spec.shape)}] = {{{dims}}};",
    ]
    if spec.scale is not None:
        lines += [
            f"#define {prefix}_SCALE {spec.scale!r}f",
            f"#define {prefix}_ZERO_POINT ({spec.zero_point})",
        ]
    return lines


def c_source(artifact: Artifact, name: str, arena_bytes: int | None) -> tuple[str, str]:
    """The ``.h`` and ``.c`` text of an artifact.

    Args:
        artifact: what to embed.
        name: the base name of the files and the C symbols (made a C identifier).
        arena_bytes: the arena the runtime needs (``None``: the runtime reports none; the
            header then says so and defines no size).

    Returns:
        ``(header, source)``.
    """
    ident = c_name(name)
    guard = ident.upper() + "_H_"
    upper = ident.upper()
    header = [
        f"/* {name}: a sparsemod {artifact.format} artifact ({artifact.size_bytes} bytes). */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <stddef.h>",
        "",
        f"extern const unsigned char {ident}[];",
        f"extern const size_t {ident}_len;",
        f"#define {upper}_LEN {artifact.size_bytes}u",
    ]
    if arena_bytes is None:
        header.append("/* the runtime reports no arena size */")
    else:
        header.append(f"#define {upper}_ARENA_BYTES {int(arena_bytes)}u")
    header.append("")
    for i, spec in enumerate(artifact.inputs):
        header += _tensor_lines(f"{upper}_INPUT{i}", spec)
    for i, spec in enumerate(artifact.outputs):
        header += _tensor_lines(f"{upper}_OUTPUT{i}", spec)
    header += ["", f"#endif  /* {guard} */", ""]
    rows = [
        "  " + ", ".join(f"0x{b:02x}" for b in artifact.data[i : i + 12]) + ","
        for i in range(0, len(artifact.data), 12)
    ]
    source = [
        f'#include "{ident}.h"',
        "",
        "#if defined(__cplusplus) || (defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L)",
        "#include <stdalign.h>",
        "#define SPARSEMOD_ALIGNED alignas(16)",
        "#else",
        "#define SPARSEMOD_ALIGNED __attribute__((aligned(16)))",
        "#endif",
        "",
        f"SPARSEMOD_ALIGNED const unsigned char {ident}[] = {{",
        *rows,
        "};",
        f"const size_t {ident}_len = {artifact.size_bytes}u;",
        "",
    ]
    return "\n".join(header), "\n".join(source)
