"""Overlays loss curves from metrics.jsonl files (ours and the PyTorch reference) into one SVG.

    python3 tools/plot_curves.py OUT.svg LABEL1=run1/metrics.jsonl LABEL2=run2/metrics.jsonl [--x step|epoch_f]
"""
import json, math, sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def nice(span, n):
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    r = raw / mag
    return mag * (1 if r < 1.5 else 2 if r < 3.5 else 5 if r < 7.5 else 10)


def main():
    out, specs = sys.argv[1], [s for s in sys.argv[2:] if "=" in s]
    xkey = "step"
    if "--x" in sys.argv:
        xkey = sys.argv[sys.argv.index("--x") + 1]
    series = []
    for s in specs:
        label, path = s.split("=", 1)
        rows = [json.loads(l) for l in open(path) if l.strip()]
        series.append((label, [r[xkey] for r in rows], [r["loss"] for r in rows]))
    xs = [x for _, sx, _ in series for x in sx]
    ys = [y for _, _, sy in series for y in sy if math.isfinite(y)]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    y0, y1 = y0 - 0.05 * (y1 - y0), y1 + 0.05 * (y1 - y0)
    W, H, l, r, t, b = 720, 420, 70, 20, 40, 55
    X = lambda x: l + (x - x0) / (x1 - x0 or 1) * (W - l - r)
    Y = lambda y: H - b - (y - y0) / (y1 - y0 or 1) * (H - t - b)
    o = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' font-family='sans-serif' font-size='12'>",
         "<rect width='100%' height='100%' fill='white'/>",
         f"<text x='{W / 2}' y='22' text-anchor='middle' font-size='15'>MAE pretraining loss</text>"]
    st = nice(x1 - x0, 8)
    v = math.ceil(x0 / st) * st
    while v <= x1:
        o.append(f"<line x1='{X(v)}' x2='{X(v)}' y1='{t}' y2='{H - b}' stroke='#eee'/>"
                 f"<text x='{X(v)}' y='{H - b + 16}' text-anchor='middle'>{v:g}</text>")
        v += st
    st = nice(y1 - y0, 6)
    v = math.ceil(y0 / st) * st
    while v <= y1:
        o.append(f"<line x1='{l}' x2='{W - r}' y1='{Y(v)}' y2='{Y(v)}' stroke='#eee'/>"
                 f"<text x='{l - 6}' y='{Y(v) + 4}' text-anchor='end'>{v:.3g}</text>")
        v += st
    o.append(f"<rect x='{l}' y='{t}' width='{W - l - r}' height='{H - t - b}' fill='none' stroke='#333'/>")
    o.append(f"<text x='{(l + W - r) / 2}' y='{H - 14}' text-anchor='middle'>{xkey}</text>")
    for k, (label, sx, sy) in enumerate(series):
        c = COLORS[k % len(COLORS)]
        pts = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in zip(sx, sy) if math.isfinite(y))
        o.append(f"<polyline fill='none' stroke='{c}' stroke-width='1.5' points='{pts}'/>")
        o.append(f"<line x1='{W - r - 260}' x2='{W - r - 240}' y1='{t + 16 + 16 * k}' y2='{t + 16 + 16 * k}' "
                 f"stroke='{c}' stroke-width='2'/><text x='{W - r - 235}' y='{t + 20 + 16 * k}'>{label} "
                 f"(final {sy[-1]:.4f})</text>")
    o.append("</svg>")
    open(out, "w").write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
