//! The getcode chart: requests per second and p99 latency against connections, main-app next to
//! its baseline, as a self-contained SVG (two panels, log-2 x axis, no dependency).

use crate::report::{Report, Row};
use std::fmt::Write as _;

const PANEL_W: f64 = 360.0;
const PANEL_H: f64 = 220.0;
const MARGIN: f64 = 50.0;
/// Service, then baseline.
const COLOURS: [&str; 2] = ["#1f77b4", "#ff7f0e"];

/// One line: a label and its (connections, value) points.
type Series = (String, Vec<(f64, f64)>);

/// The chart of the report's getcode suite, or `None` when it has no getcode rows.
pub fn getcode_svg(report: &Report) -> Option<String> {
    let rows = &report.suites.iter().find(|s| s.suite == "getcode")?.rows;
    let series = |pick: fn(&Row) -> f64| -> Vec<Series> {
        let mut lines: Vec<Series> = Vec::new();
        for row in rows {
            let point = (f64::from(row.connections), pick(row));
            match lines.iter_mut().find(|(label, _)| *label == row.label) {
                Some((_, points)) => points.push(point),
                None => lines.push((row.label.clone(), vec![point])),
            }
        }
        lines
    };
    if rows.is_empty() {
        return None;
    }
    let width = 2.0 * (PANEL_W + 2.0 * MARGIN);
    let height = PANEL_H + 2.0 * MARGIN + 40.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    panel(&mut svg, 0.0, "requests/s", &series(|r| r.load.rps));
    panel(
        &mut svg,
        PANEL_W + 2.0 * MARGIN,
        "p99 ms",
        &series(|r| r.load.p99_ms),
    );
    for (i, (label, _)) in series(|r| r.load.rps).iter().enumerate() {
        let y = PANEL_H + 2.0 * MARGIN + 12.0 + 14.0 * i as f64;
        let _ = writeln!(
            svg,
            "<rect x=\"{MARGIN}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            y - 9.0,
            COLOURS[i % 2],
            MARGIN + 16.0,
            y,
            escape(label)
        );
    }
    svg.push_str("</svg>\n");
    Some(svg)
}

/// One panel at `left`: axes, ticks at each concurrency, a polyline per series.
fn panel(svg: &mut String, left: f64, title: &str, lines: &[Series]) {
    let points = lines.iter().flat_map(|(_, p)| p.iter());
    let (x_max, y_max) = points.fold((1.0f64, 0.0f64), |(x, y), (px, py)| {
        (x.max(*px), y.max(*py))
    });
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let x_of = |c: f64| left + MARGIN + PANEL_W * (c.max(1.0).log2() / x_max.log2().max(1.0));
    let y_of = |v: f64| MARGIN + PANEL_H * (1.0 - v / y_max);
    let (x0, y0) = (left + MARGIN, MARGIN + PANEL_H);
    let _ = writeln!(
        svg,
        "<text x=\"{x0}\" y=\"{}\" font-weight=\"bold\">getcode {title}</text>\
         <line x1=\"{x0}\" y1=\"{y0}\" x2=\"{}\" y2=\"{y0}\" stroke=\"black\"/>\
         <line x1=\"{x0}\" y1=\"{MARGIN}\" x2=\"{x0}\" y2=\"{y0}\" stroke=\"black\"/>\
         <text x=\"{}\" y=\"{}\">connections</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{y_max:.0}</text>\
         <text x=\"{}\" y=\"{y0}\" text-anchor=\"end\">0</text>",
        MARGIN - 15.0,
        x0 + PANEL_W,
        x0 + PANEL_W / 2.0 - 30.0,
        y0 + 30.0,
        x0 - 4.0,
        MARGIN + 4.0,
        x0 - 4.0,
    );
    if let Some((_, first)) = lines.first() {
        for (c, _) in first {
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{c}</text>",
                x_of(*c),
                y0 + 14.0
            );
        }
    }
    for (i, (_, points)) in lines.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|(c, v)| format!("{:.1},{:.1}", x_of(*c), y_of(*v)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
            COLOURS[i % 2],
            path.join(" ")
        );
    }
}

/// `text` safe inside an SVG text node.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
