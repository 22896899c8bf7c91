//! Hand-written SVG line plots: no scripts, no external resources.

use std::fmt::Write as _;

use super::html::escape;
use super::timeline::Series;

const WIDTH: f64 = 820.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 48.0;
const PALETTE: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// A vertical line across the plot at a time.
#[derive(Debug, Clone)]
pub(crate) struct Marker {
    pub x: f64,
    pub label: String,
    /// Dashed (faults) or solid (T_min).
    pub dashed: bool,
}

/// One plot.
#[derive(Debug)]
pub(crate) struct Plot<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<Series>,
    pub x_max: f64,
    /// Fixed top of the y axis; `None`: from the data.
    pub y_max: Option<f64>,
    pub markers: Vec<Marker>,
}

/// A round step for about five ticks up to `max`.
fn tick_step(max: f64) -> f64 {
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_tick(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

impl Plot<'_> {
    /// The `<svg>` element.
    pub(crate) fn render(&self) -> String {
        let x_max = if self.x_max > 0.0 { self.x_max } else { 1.0 };
        let data_max = self
            .series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
            .fold(0.0, f64::max);
        let y_max = self.y_max.unwrap_or(data_max * 1.05).max(1e-9);
        let y_max = if !y_max.is_finite() || (self.y_max.is_none() && data_max <= 0.0) {
            1.0
        } else {
            y_max
        };
        let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
        let sx = |x: f64| LEFT + (x / x_max).clamp(0.0, 1.0) * pw;
        let sy = |y: f64| TOP + ph - (y / y_max).clamp(0.0, 1.0) * ph;
        let mut o = String::new();
        let _ = write!(
            o,
            r#"<svg id="{id}" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}">"#,
            id = escape(self.id),
            title = escape(self.title)
        );
        let _ = write!(
            o,
            r#"<text x="{LEFT}" y="20" class="title">{}</text>"#,
            escape(self.title)
        );
        self.axes(&mut o, x_max, y_max, &sx, &sy);
        self.lines(&mut o, &sx, &sy);
        self.markers(&mut o, &sx);
        o.push_str("</svg>");
        o
    }

    /// The series' polylines and the legend.
    fn lines(&self, o: &mut String, sx: &dyn Fn(f64) -> f64, sy: &dyn Fn(f64) -> f64) {
        let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
        for (i, (name, points)) in self.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let pts: Vec<String> = points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
                .collect();
            let _ = write!(
                *o,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{}"><title>{}</title></polyline>"#,
                pts.join(" "),
                escape(name)
            );
            let ly = TOP + 14.0 + i as f64 * 16.0;
            let lx = WIDTH - RIGHT + 14.0;
            let _ = write!(
                *o,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
                lx + 18.0,
                lx + 24.0,
                ly + 4.0,
                escape(name)
            );
        }
        if self.series.iter().all(|(_, p)| p.is_empty()) {
            let _ = write!(
                *o,
                r#"<text x="{}" y="{}" class="note">no data</text>"#,
                LEFT + pw / 2.0 - 20.0,
                TOP + ph / 2.0
            );
        }
    }

    /// Vertical lines with labels (faults dashed, T_min solid).
    fn markers(&self, o: &mut String, sx: &dyn Fn(f64) -> f64) {
        let ph = HEIGHT - TOP - BOTTOM;
        for (i, m) in self.markers.iter().enumerate() {
            if !m.x.is_finite() {
                continue;
            }
            let x = sx(m.x);
            let dash = if m.dashed {
                r#" stroke-dasharray="5,4""#
            } else {
                ""
            };
            let colour = if m.dashed { "#555" } else { "#000" };
            let _ = write!(
                *o,
                r#"<line class="marker" x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{}" stroke="{colour}"{dash}/><text x="{:.1}" y="{}" class="marker-label">{}</text>"#,
                TOP + ph,
                x + 3.0,
                TOP + 10.0 + (i % 4) as f64 * 12.0,
                escape(&m.label)
            );
        }
    }

    fn axes(
        &self,
        o: &mut String,
        x_max: f64,
        y_max: f64,
        sx: &dyn Fn(f64) -> f64,
        sy: &dyn Fn(f64) -> f64,
    ) {
        let (x0, y0, x1, y1) = (LEFT, TOP + HEIGHT - TOP - BOTTOM, WIDTH - RIGHT, TOP);
        let _ = write!(
            o,
            r##"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="#fff" stroke="#999"/>"##,
            x1 - x0,
            y0 - y1
        );
        let step = tick_step(x_max);
        let mut v = 0.0;
        while v <= x_max * 1.0001 && step > 0.0 {
            let x = sx(v);
            let _ = write!(
                o,
                r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{}" stroke="#999"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                y0 + 5.0,
                y0 + 18.0,
                fmt_tick(v)
            );
            v += step;
        }
        let step = tick_step(y_max);
        let mut v = 0.0;
        while v <= y_max * 1.0001 && step > 0.0 {
            let y = sy(v);
            let _ = write!(
                o,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                x0 - 6.0,
                y + 4.0,
                fmt_tick(v)
            );
            v += step;
        }
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text><text x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})">{}</text>"#,
            (x0 + x1) / 2.0,
            HEIGHT - 8.0,
            escape(self.x_label),
            (y0 + y1) / 2.0,
            (y0 + y1) / 2.0,
            escape(self.y_label)
        );
    }
}
