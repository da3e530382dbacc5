"""A tiny document model rendered twice: to Markdown (images linked by relative path) and to one
self-contained HTML file (every image embedded as a ``data:`` URI, CSS inline, no script, no external URL,
and a Content-Security-Policy that forbids fetching anything).

Blocks are plain tuples so report builders stay declarative:

* ``("h", level, text)``
* ``("p", text)``
* ``("table", headers, rows)``; cells are strings (already formatted)
* ``("kv", [(key, value), ...])``; a two-column table without header
* ``("img", path, alt)``; ``path`` absolute (the file on disk)
* ``("gallery", [(path | None, caption), ...])``; images side by side with captions
* ``("pre", text)``
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #eee; }
table { border-collapse: collapse; margin: .8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; vertical-align: top; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
table.kv td { text-align: left; }
img.plot { max-width: 100%; height: auto; border: 1px solid #eee; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; margin: .6em 0 1.2em; }
.gallery figure { margin: 0; text-align: center; }
.gallery img { image-rendering: pixelated; border: 1px solid #ccc; display: block; }
.gallery figcaption { font-size: 0.85em; margin-top: .3em; max-width: 280px; }
.missing { color: #a00; font-style: italic; }
pre { background: #f7f7f7; padding: .6em; overflow-x: auto; }
"""


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _rel(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(path).as_posix()


def _md_link_target(path: str) -> str:
    # Markdown link destinations may not contain spaces or parentheses unescaped; <...> allows them.
    return f"<{path}>" if any(c in path for c in " ()<>") else path


def render_markdown(blocks: list[tuple], base: Path) -> str:
    """Markdown with images linked relative to ``base`` (the folder the .md file is written to)."""
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2].replace("\n", " "))
        elif kind == "p":
            out.append(block[1])
        elif kind == "table":
            headers, rows = block[1], block[2]
            out.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
            out.append("|" + "|".join("---" for _ in headers) + "|")
            out.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows)
        elif kind == "kv":
            out.append("| | |")
            out.append("|---|---|")
            out.extend(f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in block[1])
        elif kind == "img":
            out.append(f"![{_md_cell(block[2])}]({_md_link_target(_rel(block[1], base))})")
        elif kind == "gallery":
            items = block[1]
            out.append("| " + " | ".join(_md_cell(cap) for _, cap in items) + " |")
            out.append("|" + "|".join("---" for _ in items) + "|")
            cells = [
                f"![{_md_cell(cap)}]({_md_link_target(_rel(p, base))})" if p is not None and Path(p).exists()
                else "(missing)"
                for p, cap in items
            ]
            out.append("| " + " | ".join(cells) + " |")
        elif kind == "pre":
            out.append("```\n" + block[1] + "\n```")
        else:  # pragma: no cover - a builder bug
            raise ValueError(f"unknown block {kind!r}")
        out.append("")
    return "\n".join(out)


def data_uri(path: Path) -> str | None:
    """The file as a base64 ``data:`` URI, or None when it is missing or not a raster image type we embed."""
    path = Path(path)
    mime = MIME.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return None
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _image_size(path: Path) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except Exception:
        return None


def render_html(blocks: list[tuple], title: str) -> str:
    """One self-contained HTML page: nothing in it can cause a network request."""
    e = html.escape
    body: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            level = min(max(int(block[1]), 1), 6)
            body.append(f"<h{level}>{e(block[2])}</h{level}>")
        elif kind == "p":
            body.append(f"<p>{e(block[1])}</p>")
        elif kind == "table":
            head = "".join(f"<th>{e(str(h))}</th>" for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in block[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "kv":
            rows = "".join(f"<tr><td><b>{e(str(k))}</b></td><td>{e(str(v))}</td></tr>" for k, v in block[1])
            body.append(f'<table class="kv"><tbody>{rows}</tbody></table>')
        elif kind == "img":
            uri = data_uri(block[1])
            if uri is None:
                body.append(f'<p class="missing">image not available: {e(Path(block[1]).name)}</p>')
            else:
                body.append(f'<p><img class="plot" alt="{e(block[2])}" src="{uri}"></p>')
        elif kind == "gallery":
            figs = []
            for path, caption in block[1]:
                uri = None if path is None else data_uri(path)
                if uri is None:
                    figs.append(f'<figure><p class="missing">missing</p><figcaption>{e(caption)}</figcaption></figure>')
                    continue
                size = _image_size(path)
                dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
                figs.append(f'<figure><img alt="{e(caption)}"{dims} src="{uri}"><figcaption>{e(caption)}</figcaption></figure>')
            body.append('<div class="gallery">' + "".join(figs) + "</div>")
        elif kind == "pre":
            body.append(f"<pre>{e(block[1])}</pre>")
        else:  # pragma: no cover
            raise ValueError(f"unknown block {kind!r}")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def write_pair(blocks: list[tuple], title: str, out: Path, stem: str = "report") -> dict:
    """Write ``out/<stem>.md`` and ``out/<stem>.html``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    md, page = out / f"{stem}.md", out / f"{stem}.html"
    md.write_text(render_markdown(blocks, out), encoding="utf-8")
    page.write_text(render_html(blocks, title), encoding="utf-8")
    return {"markdown": md, "html": page}


def fmt(value, spec: str = ".2f", none: str = "–") -> str:
    """Format a number, or a dash for None/missing."""
    if value is None:
        return none
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def flatten(d, prefix: str = "") -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    if not isinstance(d, dict):
        return [(prefix or "value", str(d))]
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            items.extend(flatten(v, key))
        elif isinstance(v, (list, tuple)):
            items.append((key, ", ".join(json.dumps(x) if isinstance(x, (dict, list)) else str(x) for x in v)))
        else:
            items.append((key, "–" if v is None else str(v)))
    return items
