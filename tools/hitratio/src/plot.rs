//! One SVG per workload: hit ratio against capacity, a line per policy, drawn
//! with plotters' SVG backend (see docs/hitratio.md for why plotters).

use std::path::Path;

use plotters::prelude::*;

use crate::report::{Row, WorkloadResult};

/// A distinct colour per anchor, in the README's order (mapcache is drawn in
/// black and thicker, the exact LRU in grey).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
];

/// Writes `result`'s plot to `path`.
pub fn write_svg(result: &WorkloadResult, path: &Path) -> Result<(), String> {
    draw(result, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn draw(result: &WorkloadResult, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (960, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    // The legend to the right of the chart, where no line can pass under it.
    let (chart_area, legend_area) = root.split_horizontally(800);
    let lines: Vec<(&Row, ShapeStyle)> = std::iter::once((&result.mapcache, BLACK.stroke_width(3)))
        .chain(std::iter::once((
            &result.lru,
            RGBColor(128, 128, 128).stroke_width(2),
        )))
        .chain(
            result
                .anchors
                .iter()
                .zip(PALETTE.iter().cycle())
                .map(|(row, colour)| (row, colour.stroke_width(1))),
        )
        .collect();
    let top = lines
        .iter()
        .flat_map(|(row, _)| row.values.iter().copied())
        .fold(0.0, f64::max);
    let y_max = ((top / 10.0).ceil() * 10.0).clamp(10.0, 100.0);
    let x_max = *result.capacities.last().ok_or("no capacities")? as f64;
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(
            if result.invalid.is_empty() {
                format!("{}: hit ratio against capacity", result.name)
            } else {
                format!("{}: INVALID RUN (see docs/hitratio.md)", result.name)
            },
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("capacity (entries)")
        .y_desc("hit ratio (%)")
        .x_labels(10)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    let points = |row: &Row| -> Vec<(f64, f64)> {
        result
            .capacities
            .iter()
            .map(|&c| c as f64)
            .zip(row.values.iter().copied())
            .collect()
    };
    for (row, style) in &lines {
        let points = points(row);
        let colour = style.color;
        chart.draw_series(LineSeries::new(points.clone(), *style))?;
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
    }
    // mapcache once more, on top of the lines that cross it (the legend keeps
    // it first).
    let (mapcache, style) = lines[0];
    chart.draw_series(LineSeries::new(points(mapcache), style))?;
    for (i, (row, style)) in lines.iter().enumerate() {
        let y = 60 + 24 * i as i32;
        let swatch = style.color.stroke_width(style.stroke_width.max(2));
        legend_area.draw(&PathElement::new(vec![(4, y), (28, y)], swatch))?;
        legend_area.draw(&Text::new(
            row.name.as_str(),
            (34, y - 7),
            ("sans-serif", 14).into_font(),
        ))?;
    }
    root.present()?;
    Ok(())
}
