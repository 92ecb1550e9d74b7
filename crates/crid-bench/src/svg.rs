//! Two hand-written SVG plots: latency CDFs and stacked phase bars.

use std::fmt::Write;

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];
const W: f64 = 720.0;
const H: f64 = 420.0;
const L: f64 = 70.0; // left margin
const R: f64 = 180.0; // right margin (legend)
const T: f64 = 40.0;
const B: f64 = 50.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn header(title: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
"#,
        (W - R + L) / 2.0,
        esc(title)
    );
    s
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

fn axes(
    s: &mut String,
    xmax: f64,
    ymax: f64,
    xlabel: &str,
    ylabel: &str,
    yfmt: &dyn Fn(f64) -> String,
) {
    let pw = W - L - R;
    let ph = H - T - B;
    let _ = writeln!(
        s,
        r##"<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    for i in 0..=5 {
        let f = i as f64 / 5.0;
        let x = L + f * pw;
        let y = T + ph - f * ph;
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="{T}" x2="{x}" y2="{}" stroke="#ddd"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
            T + ph,
            T + ph + 16.0,
            crate::stats::fmt(xmax * f)
        );
        let _ = writeln!(
            s,
            r##"<line x1="{L}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            L + pw,
            L - 6.0,
            y + 4.0,
            yfmt(ymax * f)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
        L + pw / 2.0,
        H - 12.0,
        esc(xlabel),
        T + ph / 2.0,
        T + ph / 2.0,
        esc(ylabel)
    );
}

fn legend(s: &mut String, names: &[&str]) {
    for (i, n) in names.iter().enumerate() {
        let y = T + 10.0 + i as f64 * 20.0;
        let x = W - R + 14.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            y - 10.0,
            COLORS[i % COLORS.len()],
            x + 18.0,
            y,
            esc(n)
        );
    }
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
    let mut s = header(title);
    axes(&mut s, xmax, 1.0, xlabel, "fraction of samples", &|v| {
        format!("{v:.1}")
    });
    let pw = W - L - R;
    let ph = H - T - B;
    for (i, (_, v)) in series.iter().enumerate() {
        let mut v = v.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() {
            continue;
        }
        let mut pts = format!("{L},{}", T + ph);
        for (k, x) in v.iter().enumerate() {
            let px = L + (x.min(xmax) / xmax) * pw;
            let py0 = T + ph - (k as f64 / v.len() as f64) * ph;
            let py1 = T + ph - ((k + 1) as f64 / v.len() as f64) * ph;
            let _ = write!(pts, " {px:.1},{py0:.1} {px:.1},{py1:.1}");
        }
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{pts}"/>"#,
            COLORS[i % COLORS.len()]
        );
    }
    let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    legend(&mut s, &names);
    s.push_str("</svg>\n");
    s
}

/// Horizontal stacked bars: one per label, segments (name, value in ms).
pub fn stacked_bars(title: &str, xlabel: &str, bars: &[(String, Vec<(String, f64)>)]) -> String {
    let total = bars
        .iter()
        .map(|(_, segs)| segs.iter().map(|(_, v)| v.max(0.0)).sum::<f64>())
        .fold(0.0, f64::max);
    let xmax = nice_max(total);
    let mut seg_names: Vec<String> = vec![];
    for (_, segs) in bars {
        for (n, _) in segs {
            if !seg_names.contains(n) {
                seg_names.push(n.clone());
            }
        }
    }
    let mut s = header(title);
    let pw = W - L - R;
    let ph = H - T - B;
    let _ = writeln!(
        s,
        r##"<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    for i in 0..=5 {
        let f = i as f64 / 5.0;
        let x = L + f * pw;
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="{T}" x2="{x}" y2="{}" stroke="#ddd"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
            T + ph,
            T + ph + 16.0,
            crate::stats::fmt(xmax * f)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        L + pw / 2.0,
        H - 12.0,
        esc(xlabel)
    );
    let n = bars.len().max(1) as f64;
    let slot = ph / n;
    let bh = (slot * 0.6).min(40.0);
    for (i, (label, segs)) in bars.iter().enumerate() {
        let y = T + slot * i as f64 + (slot - bh) / 2.0;
        let mut x = L;
        for (name, v) in segs {
            let w = v.max(0.0) / xmax * pw;
            let c = seg_names.iter().position(|n| n == name).unwrap_or(0);
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{bh:.1}" fill="{}"><title>{}: {:.2} {}</title></rect>"#,
                COLORS[c % COLORS.len()],
                esc(name),
                v,
                esc(xlabel)
            );
            x += w;
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"#,
            L - 4.0,
            y + bh / 2.0 + 4.0,
            esc(label)
        );
    }
    let names: Vec<&str> = seg_names.iter().map(String::as_str).collect();
    legend(&mut s, &names);
    s.push_str("</svg>\n");
    s
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

    #[test]
    fn svgs_are_well_formed_enough() {
        let c = cdf(
            "t<",
            "ms",
            &[("a".into(), vec![1.0, 2.0, 3.0]), ("b".into(), vec![])],
        );
        assert!(c.starts_with("<svg") && c.trim_end().ends_with("</svg>"));
        assert!(c.contains("t&lt;") && c.contains("<polyline"));
        let b = stacked_bars(
            "phases",
            "ms",
            &[(
                "crid".into(),
                vec![("cni".into(), 5.0), ("containerd".into(), 20.0)],
            )],
        );
        assert_eq!(b.matches("<rect x=").count(), 1 + 2 + 2); // frame, 2 segments, 2 legend boxes
    }
}
