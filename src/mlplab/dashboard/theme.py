"""The dashboard's look: one stylesheet, inlined into the page (no CDN, no asset files).

>>> "<style>" in index_string("runs/demo")
True
"""

from __future__ import annotations

import html

CSS = """
:root { --ink:#1f2933; --muted:#6b7785; --line:#e3e8ee; --bg:#f6f8fa; --card:#fff;
        --accent:#2f6fdf; --ok:#1e8e3e; --bad:#c5221f; --warn:#b26a00; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
       color:var(--ink); background:var(--bg); }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
.topbar { display:flex; align-items:center; gap:18px; padding:10px 24px; background:#15202b;
          color:#e8eef4; position:sticky; top:0; z-index:10; }
.topbar .brand { font-weight:700; font-size:17px; color:#fff; letter-spacing:.3px; }
.topbar .store { color:#9fb1c3; font-family:ui-monospace,monospace; font-size:12.5px; }
.topbar nav { display:flex; gap:14px; margin-left:12px; }
.topbar nav a { color:#cfe0f1; } .topbar nav a.disabled { color:#6f8397; pointer-events:none; }
.topbar .live { margin-left:auto; color:#9fb1c3; font-size:12.5px; }
.topbar .live .dot { display:inline-block; width:8px; height:8px; border-radius:50%;
                     background:#3ecf6e; margin-right:6px; }
main { padding:18px 24px 48px; max-width:1480px; margin:0 auto; }
h2 { font-size:18px; margin:22px 0 10px; } h2:first-child { margin-top:4px; }
h3 { font-size:14.5px; margin:14px 0 6px; } .card > h3:first-child { margin-top:0; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px;
        margin-bottom:16px; }
.muted { color:var(--muted); } .ok-note { color:var(--ok); }
.error { color:var(--bad); margin:6px 0; }
.controls { display:flex; flex-wrap:wrap; align-items:center; gap:10px; margin-bottom:10px; }
.controls .filter { flex:1 1 360px; padding:7px 10px; border:1px solid #cbd3dc; border-radius:6px;
                    font:inherit; }
.controls .dd { width:200px; } .controls .dd-wide { width:260px; }
.controls label { color:var(--muted); }
.table { border-collapse:collapse; width:100%; font-size:13px; }
.table th, .table td { padding:5px 8px; border-bottom:1px solid var(--line); text-align:left;
                       white-space:nowrap; }
.table th { background:#f0f3f6; font-weight:600; color:#3c4650; }
.table td.num, .table th.num { text-align:right; font-variant-numeric:tabular-nums; }
.table tbody tr:hover { background:#f3f7ff; }
.table tr.kept td { background:#eef6ee; font-weight:600; }
.table tr.failed td { color:var(--bad); }
.table-wrap { overflow-x:auto; }
.pick { display:inline-block; } .pick input { margin:0; cursor:pointer; }
.run-link { font-family:ui-monospace,monospace; font-size:12.5px; }
.badge { display:inline-block; padding:1px 7px; border-radius:9px; font-size:12px;
         background:#e8edf2; color:#3c4650; }
.status-done { background:#e3f4e6; color:var(--ok); }
.status-running { background:#e4edfd; color:var(--accent); }
.status-failed { background:#fde7e6; color:var(--bad); } .status-pending { background:#f2f2f2; }
.sev-severe { background:#fde7e6; color:var(--bad); }
.sev-warning { background:#fff1db; color:var(--warn); } .sev-info { background:#e4edfd; color:var(--accent); }
.pager { display:flex; gap:10px; align-items:center; margin-top:8px; }
.pager button { padding:4px 12px; border:1px solid #cbd3dc; background:#fff; border-radius:6px;
                cursor:pointer; }
.pager button:disabled { opacity:.4; cursor:default; }
.grid2 { display:grid; grid-template-columns:repeat(auto-fit, minmax(520px, 1fr)); gap:14px; }
.grid2 > .card { margin-bottom:0; }
.grid2.figures { margin-bottom:16px; }
.figure-card { padding:6px 8px 2px; }
.kvs { display:flex; flex-wrap:wrap; gap:8px 22px; margin:6px 0 2px; }
.kv-key { font-size:11.5px; color:var(--muted); text-transform:uppercase; letter-spacing:.4px; }
.kv-value { font-size:15px; font-weight:600; font-variant-numeric:tabular-nums; }
.findings { list-style:none; padding:0; margin:0; }
.findings li { padding:7px 0; border-bottom:1px solid var(--line); }
.findings .where { color:var(--muted); margin-left:8px; font-size:12.5px; }
.findings .message { margin-top:2px; } .findings .hint { color:var(--muted); font-size:12.5px; }
.config { background:#f6f8fa; border:1px solid var(--line); border-radius:6px; padding:10px 12px;
          font-size:12.5px; max-height:460px; overflow:auto; margin:0; }
.run-title { font-family:ui-monospace,monospace; font-size:17px; }
.subtitle { color:var(--muted); margin-top:2px; }
.notfound { padding:40px 0; text-align:center; color:var(--muted); }
"""


def index_string(store_name: str) -> str:
    """Dash's page template with the stylesheet inlined and the store in the title."""
    title = html.escape(f"mlplab · {store_name}")
    return f"""<!DOCTYPE html>
<html>
<head>
{{%metas%}}
<title>{title}</title>
<link rel="icon" href="data:,">
{{%css%}}
<style>{CSS}</style>
</head>
<body>
{{%app_entry%}}
<footer>
{{%config%}}
{{%scripts%}}
{{%renderer%}}
</footer>
</body>
</html>"""
