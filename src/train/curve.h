// Training curves as SVG pictures (no dependency): one or more series of (x, y) points with axes, ticks and a legend.
#pragma once
#include <string>
#include <vector>

namespace mae {

struct Series {
  std::string label;
  std::vector<double> x, y;
  std::string color = "#1f77b4";
  bool dots = false;
};

// Writes an SVG (atomically) with the series, titled, with axis labels.
void write_curve_svg(const std::string& path, const std::string& title, const std::string& xlabel,
                     const std::string& ylabel, const std::vector<Series>& series);

}  // namespace mae
