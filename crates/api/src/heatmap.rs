//! A static SVG heat map of check-ins per H3 cell: Web Mercator, one filled path per cell,
//! colour by the logarithm of its count, a legend, and a caption. No scripts, no external
//! resources, so it renders anywhere an image does.

use std::f64::consts::FRAC_PI_4;
use std::fmt::Write as _;

use vicinity_geo::hexagon::{BoundingBox, Position};

/// The drawing's width in pixels; the height follows the box's shape.
const WIDTH: f64 = 960.0;
const MIN_HEIGHT: f64 = 240.0;
const MAX_HEIGHT: f64 = 1_400.0;
/// Room under the map for the legend and caption.
const FOOTER: f64 = 64.0;
/// Web Mercator cannot draw the poles; latitudes are clamped to its usual limit.
const MAX_MERCATOR_LAT: f64 = 85.051_128_78;

/// One cell to draw.
pub struct Shape {
    pub name: String,
    pub polygons: Vec<Vec<Position>>,
    pub checkins: u64,
}

/// Colour stops from few to many check-ins (perceptually ordered, dark to bright).
const RAMP: [(f64, [u8; 3]); 5] = [
    (0.0, [68, 1, 84]),
    (0.25, [59, 82, 139]),
    (0.5, [33, 145, 140]),
    (0.75, [94, 201, 98]),
    (1.0, [253, 231, 37]),
];

fn colour(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let mut previous = RAMP[0];
    for stop in RAMP {
        if t <= stop.0 {
            let span = stop.0 - previous.0;
            let f = if span > 0.0 {
                (t - previous.0) / span
            } else {
                0.0
            };
            let mix = |a: u8, b: u8| {
                let (a, b) = (f64::from(a), f64::from(b));
                (a + (b - a) * f).round() as u8
            };
            let ([r0, g0, b0], [r1, g1, b1]) = (previous.1, stop.1);
            return format!("#{:02x}{:02x}{:02x}", mix(r0, r1), mix(g0, g1), mix(b0, b1));
        }
        previous = stop;
    }
    "#fde725".to_owned()
}

fn mercator_y(lat: f64) -> f64 {
    let lat = lat.clamp(-MAX_MERCATOR_LAT, MAX_MERCATOR_LAT).to_radians();
    (FRAC_PI_4 + lat / 2.0).tan().ln()
}

/// Text for SVG character data and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The map of `shapes` framed on `bbox`, with `caption` under it.
pub fn render(bbox: &BoundingBox, shapes: &[Shape], caption: &str) -> String {
    // Longitudes run continuously east from the box's west edge, across the antimeridian.
    let west = bbox.min_lng;
    let east = if bbox.max_lng >= west {
        bbox.max_lng
    } else {
        bbox.max_lng + 360.0
    };
    let unwrap = |lng: f64| if lng < west - 1e-9 { lng + 360.0 } else { lng };
    let (top, bottom) = (mercator_y(bbox.max_lat), mercator_y(bbox.min_lat));
    let width_rad = (east - west).to_radians().max(1e-9);
    let height = (WIDTH * (top - bottom) / width_rad).clamp(MIN_HEIGHT, MAX_HEIGHT);
    let (sx, sy) = (WIDTH / width_rad, height / (top - bottom).max(1e-9));
    let point = |p: &Position| {
        let x = (unwrap(p[0]) - west).to_radians() * sx;
        let y = (top - mercator_y(p[1])) * sy;
        (x, y)
    };
    let most = shapes.iter().map(|s| s.checkins).max().unwrap_or(0);
    let fewest = shapes.iter().map(|s| s.checkins).min().unwrap_or(0);
    let scale = |n: u64| {
        if most <= 1 {
            1.0
        } else {
            (n.max(1) as f64).ln() / (most as f64).ln()
        }
    };
    let total_height = height + FOOTER;
    let mut svg = String::with_capacity(256 + shapes.len() * 200);
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{total_height:.0}\" \
         viewBox=\"0 0 {WIDTH} {total_height:.0}\" font-family=\"sans-serif\" font-size=\"12\">\
         <title>{}</title>\
         <rect width=\"{WIDTH}\" height=\"{height:.1}\" fill=\"#f4f4f4\"/>\
         <g stroke=\"#ffffff\" stroke-width=\"0.5\" stroke-linejoin=\"round\">",
        escape(caption)
    );
    for shape in shapes {
        let mut d = String::new();
        for ring in &shape.polygons {
            for (i, p) in ring.iter().enumerate() {
                let (x, y) = point(p);
                let _ = write!(d, "{}{x:.1} {y:.1}", if i == 0 { "M" } else { "L" });
            }
            d.push('Z');
        }
        let _ = write!(
            svg,
            "<path d=\"{d}\" fill=\"{}\"><title>{}: {} check-ins</title></path>",
            colour(scale(shape.checkins)),
            escape(&shape.name),
            shape.checkins
        );
    }
    svg.push_str("</g>");
    // Legend: the ramp, its ends labelled, then the caption.
    let legend_y = height + 12.0;
    svg.push_str("<defs><linearGradient id=\"ramp\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">");
    for (offset, _) in RAMP {
        let _ = write!(
            svg,
            "<stop offset=\"{offset}\" stop-color=\"{}\"/>",
            colour(offset)
        );
    }
    let _ = write!(
        svg,
        "</linearGradient></defs>\
         <rect x=\"12\" y=\"{legend_y:.1}\" width=\"240\" height=\"12\" fill=\"url(#ramp)\"/>\
         <text x=\"12\" y=\"{:.1}\">{fewest}</text>\
         <text x=\"252\" y=\"{:.1}\" text-anchor=\"end\">{most} check-ins (log scale)</text>\
         <text x=\"270\" y=\"{:.1}\">{}</text></svg>",
        legend_y + 26.0,
        legend_y + 26.0,
        legend_y + 10.0,
        escape(caption)
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_run_from_dark_to_bright() {
        assert_eq!(colour(0.0), "#440154");
        assert_eq!(colour(1.0), "#fde725");
        assert_eq!(colour(7.0), "#fde725");
        assert_eq!(colour(0.5), "#21918c");
    }

    #[test]
    fn shapes_land_inside_the_frame_across_the_antimeridian() {
        let bbox = BoundingBox::parse("179,-18,-179,-16").unwrap();
        let ring = vec![
            [179.5, -17.5],
            [-179.5, -17.5],
            [-179.5, -16.5],
            [179.5, -16.5],
            [179.5, -17.5],
        ];
        let svg = render(
            &bbox,
            &[Shape {
                name: "a <cell>".into(),
                polygons: vec![ring],
                checkins: 3,
            }],
            "k & co",
        );
        assert!(svg.contains("a &lt;cell&gt;: 3 check-ins"));
        assert!(svg.contains("k &amp; co"));
        let d = svg.split("d=\"").nth(1).unwrap().split('"').next().unwrap();
        for number in d
            .split(|c: char| c.is_ascii_alphabetic() || c == ' ')
            .filter(|n| !n.is_empty())
        {
            let value: f64 = number.parse().unwrap();
            assert!((0.0..=WIDTH).contains(&value), "{d}");
        }
    }
}
