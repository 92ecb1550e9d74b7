//! The benchmark's two plots, drawn with plotters' SVG backend: latency
//! CDFs and stacked phase bars, each with a legend beside the plot.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

const COLORS: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
];
const W: u32 = 720;
const H: u32 = 420;
/// Width of the legend, right of the plot.
const LEGEND: u32 = 180;
const FONT: &str = "sans-serif";

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type Drawn = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// A "nice" upper bound for an axis (1, 2, 5 × 10^k).
pub fn nice_max(v: f64) -> f64 {
    // NaN, infinities, zero and negatives alike.
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let e = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * e {
            return m * e;
        }
    }
    10.0 * e
}

/// Draw `draw(plot area)` on a white canvas with `names` as its legend; the
/// SVG text.
fn plot(names: &[&str], draw: impl FnOnce(&Area) -> Drawn) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let (plot_area, legend_area) = root.split_horizontally(W - LEGEND);
        let drawn = root
            .fill(&WHITE)
            .and_then(|()| draw(&plot_area))
            .and_then(|()| legend(&legend_area, names))
            .and_then(|()| root.present());
        if let Err(e) = drawn {
            // The SVG backend writes into a String: nothing here can fail
            // but a plotters bug; say so in the picture.
            return format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>{}</text></svg>\n",
                e.to_string().replace('&', "&amp;").replace('<', "&lt;")
            );
        }
    }
    svg
}

fn legend(area: &Area, names: &[&str]) -> Drawn {
    for (i, name) in names.iter().enumerate() {
        let y = 30 + i as i32 * 20;
        area.draw(&Rectangle::new([(14, y), (26, y + 12)], color(i).filled()))?;
        area.draw(&Text::new(name.to_string(), (32, y), (FONT, 15)))?;
    }
    Ok(())
}

/// Empirical CDF of each series (milliseconds); the x axis ends at the
/// largest p99 so one outlier does not flatten the plot.
pub fn cdf(title: &str, xlabel: &str, series: &[(String, Vec<f64>)]) -> String {
    let xmax = nice_max(
        series
            .iter()
            .map(|(_, v)| crate::stats::percentile(v, 99.0))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max),
    );
    let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    plot(&names, |area| {
        let mut chart = ChartBuilder::on(area)
            .caption(title, (FONT, 19))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..xmax, 0f64..1f64)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(6)
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&|v| crate::stats::fmt(*v))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .x_desc(xlabel)
            .y_desc("fraction of samples")
            .draw()?;
        for (i, (_, v)) in series.iter().enumerate() {
            let mut v = v.clone();
            v.sort_by(|a, b| a.total_cmp(b));
            let n = v.len() as f64;
            // A step per sample: up from k/n to (k+1)/n at its value.
            let steps = v.iter().enumerate().flat_map(|(k, x)| {
                let x = x.min(xmax);
                [(x, k as f64 / n), (x, (k + 1) as f64 / n)]
            });
            let line = std::iter::once((0.0, 0.0)).chain(steps);
            if !v.is_empty() {
                chart.draw_series(LineSeries::new(line, color(i).stroke_width(2)))?;
            }
        }
        Ok(())
    })
}

/// Horizontal stacked bars: one per label, segments (name, value in ms).
pub fn stacked_bars(title: &str, xlabel: &str, bars: &[(String, Vec<(String, f64)>)]) -> String {
    let total = bars
        .iter()
        .map(|(_, segs)| segs.iter().map(|(_, v)| v.max(0.0)).sum::<f64>())
        .fold(0.0, f64::max);
    let xmax = nice_max(total);
    let mut seg_names: Vec<&str> = vec![];
    for (_, segs) in bars {
        for (n, _) in segs {
            if !seg_names.contains(&n.as_str()) {
                seg_names.push(n);
            }
        }
    }
    // One y segment per bar, counted bottom-up, the first bar on top. An
    // integer range includes its end, so 0..rows - 1 makes `rows` segments
    // (at least two: plotters cannot map a range of one value).
    let rows = bars.len().max(2);
    let row_of = |i: usize| rows - 1 - i;
    plot(&seg_names, |area| {
        let mut chart = ChartBuilder::on(area)
            .caption(title, (FONT, 19))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(120)
            .build_cartesian_2d(0f64..xmax, (0..rows - 1).into_segmented())?;
        chart
            .configure_mesh()
            .x_labels(6)
            .light_line_style(TRANSPARENT)
            .disable_y_mesh()
            .x_label_formatter(&|v| crate::stats::fmt(*v))
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(row) => (0..bars.len())
                    .find(|i| row_of(*i) == *row)
                    .map_or(String::new(), |i| bars[i].0.clone()),
                _ => String::new(),
            })
            .x_desc(xlabel)
            .draw()?;
        for (i, (_, segs)) in bars.iter().enumerate() {
            // Bar i's segment, from its start to the next one's (or the end).
            let row = row_of(i);
            let bottom = SegmentValue::Exact(row);
            let top = if row + 1 < rows {
                SegmentValue::Exact(row + 1)
            } else {
                SegmentValue::Last
            };
            let mut x = 0.0;
            for (name, v) in segs {
                let w = v.max(0.0);
                let c = seg_names.iter().position(|n| n == name).unwrap_or(0);
                let mut bar = Rectangle::new(
                    [(x, bottom.clone()), (x + w, top.clone())],
                    color(c).filled(),
                );
                bar.set_margin(8, 8, 0, 0);
                chart.draw_series(std::iter::once(bar))?;
                x += w;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_bounds() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(3.0), 5.0);
        assert_eq!(nice_max(120.0), 200.0);
        assert_eq!(nice_max(1000.0), 1000.0);
    }

    /// The contents of the SVG's `<text>` elements, trimmed.
    fn texts(svg: &str) -> Vec<&str> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>')?.1.split_once("</text>"))
            .map(|(text, _)| text.trim())
            .collect()
    }

    #[test]
    fn cdf_draws_one_line_per_series_and_escapes_text() {
        let c = cdf(
            "t<",
            "ms",
            &[("a".into(), vec![1.0, 2.0, 3.0]), ("b".into(), vec![])],
        );
        assert!(
            c.starts_with("<svg") && c.trim_end().ends_with("</svg>"),
            "{c}"
        );
        let texts = texts(&c);
        assert!(texts.contains(&"t&lt;"), "{texts:?}");
        // One step line for the series with samples, in its colour.
        assert_eq!(c.matches("stroke-width=\"2\"").count(), 1, "{c}");
        assert!(c.contains("stroke=\"#1F77B4\" stroke-width=\"2\""), "{c}");
        // Both series are in the legend, even the empty one.
        assert!(texts.contains(&"a") && texts.contains(&"b"), "{texts:?}");
    }

    #[test]
    fn stacked_bars_draw_each_segment_once() {
        let b = stacked_bars(
            "phases",
            "ms",
            &[(
                "crid".into(),
                vec![("cni".into(), 5.0), ("containerd".into(), 20.0)],
            )],
        );
        assert!(
            b.starts_with("<svg") && b.trim_end().ends_with("</svg>"),
            "{b}"
        );
        let texts = texts(&b);
        for name in ["phases", "crid", "cni", "containerd"] {
            assert!(texts.contains(&name), "{name}: {texts:?}");
        }
        // Background, 2 segments, 2 legend boxes.
        assert_eq!(b.matches("<rect").count(), 1 + 2 + 2, "{b}");
    }
}
