#include "train/curve.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "io/atomic_file.h"

namespace mae {

namespace {
// "Nice" tick step covering span in about n steps (1, 2, 5 × 10^k).
double nice_step(double span, int n) {
  const double raw = span / n, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  return mag * (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10);
}
std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}
}  // namespace

void write_curve_svg(const std::string& path, const std::string& title, const std::string& xlabel,
                     const std::string& ylabel, const std::vector<Series>& series) {
  const double W = 720, H = 420, l = 70, r = 20, t = 40, b = 55;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad, y1 += pad;
  auto X = [&](double x) { return l + (x - x0) / (x1 - x0) * (W - l - r); };
  auto Y = [&](double y) { return H - b - (y - y0) / (y1 - y0) * (H - t - b); };
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
    << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
  o << "<text x='" << W / 2 << "' y='22' text-anchor='middle' font-size='15'>" << esc(title) << "</text>\n";
  const double xs = nice_step(x1 - x0, 8), ys = nice_step(y1 - y0, 6);
  for (double v = std::ceil(x0 / xs) * xs; v <= x1 + 1e-9 * xs; v += xs)
    o << "<line x1='" << X(v) << "' x2='" << X(v) << "' y1='" << t << "' y2='" << H - b
      << "' stroke='#eee'/><text x='" << X(v) << "' y='" << H - b + 16 << "' text-anchor='middle'>" << v
      << "</text>\n";
  for (double v = std::ceil(y0 / ys) * ys; v <= y1 + 1e-9 * ys; v += ys)
    o << "<line x1='" << l << "' x2='" << W - r << "' y1='" << Y(v) << "' y2='" << Y(v)
      << "' stroke='#eee'/><text x='" << l - 6 << "' y='" << Y(v) + 4 << "' text-anchor='end'>" << v
      << "</text>\n";
  o << "<rect x='" << l << "' y='" << t << "' width='" << W - l - r << "' height='" << H - t - b
    << "' fill='none' stroke='#333'/>\n";
  o << "<text x='" << (l + W - r) / 2 << "' y='" << H - 14 << "' text-anchor='middle'>" << esc(xlabel)
    << "</text>\n<text transform='translate(16," << (t + H - b) / 2 << ") rotate(-90)' text-anchor='middle'>"
    << esc(ylabel) << "</text>\n";
  int k = 0;
  for (const auto& s : series) {
    o << "<polyline fill='none' stroke='" << s.color << "' stroke-width='1.5' points='";
    for (size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.y[i])) o << X(s.x[i]) << "," << Y(s.y[i]) << " ";
    o << "'/>\n";
    if (s.dots)
      for (size_t i = 0; i < s.x.size(); ++i)
        if (std::isfinite(s.y[i]))
          o << "<circle cx='" << X(s.x[i]) << "' cy='" << Y(s.y[i]) << "' r='3' fill='" << s.color << "'/>\n";
    o << "<line x1='" << W - r - 190 << "' x2='" << W - r - 170 << "' y1='" << t + 16 + 16 * k << "' y2='"
      << t + 16 + 16 * k << "' stroke='" << s.color << "' stroke-width='2'/><text x='" << W - r - 165 << "' y='"
      << t + 20 + 16 * k << "'>" << esc(s.label) << "</text>\n";
    ++k;
  }
  o << "</svg>\n";
  io::write_file_atomic(path, o.str());
}

}  // namespace mae
