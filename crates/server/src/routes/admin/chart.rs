//! The activity chart: tool calls and sign-ins per time bucket, drawn as inline SVG
//! in the page itself. No script, no external asset and no inline style, so the
//! pages' CSP (`default-src 'none'; style-src 'self'`) holds: shapes are coloured by
//! classes of the page's own stylesheet.

use mcpgate_domain::model::Activity;

use crate::pages;

pub const WIDTH: i64 = 720;
pub const HEIGHT: i64 = 200;
const LEFT: i64 = 40;
const BOTTOM: i64 = 24;
const TOP: i64 = 10;

/// One bar, in SVG user units.
pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub h: i64,
    /// `calls` or `signins`: the stylesheet's class.
    pub class: &'static str,
    /// The tooltip.
    pub title: String,
}

pub struct Chart {
    pub bars: Vec<Bar>,
    /// The largest count (the top of the scale).
    pub max: i64,
    pub from_label: String,
    pub to_label: String,
    pub total_calls: i64,
    pub total_sign_ins: i64,
    pub width: i64,
    pub height: i64,
    pub left: i64,
    pub top: i64,
    pub baseline: i64,
}

/// Lays out `buckets` (each `width` seconds from `from`) as paired bars.
pub fn chart(from: i64, width: i64, buckets: &[Activity]) -> Chart {
    let max = buckets
        .iter()
        .map(|b| b.tool_calls.max(b.sign_ins))
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = WIDTH - LEFT - 4;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / (buckets.len().max(1) as i64);
    let bar_w = ((slot - 2) / 2).max(1);
    let mut bars = Vec::with_capacity(buckets.len() * 2);
    for (i, b) in buckets.iter().enumerate() {
        let x0 = LEFT + i as i64 * slot + 1;
        let at = pages::when(Some(from + i as i64 * width));
        for (k, (n, class, what)) in [
            (b.tool_calls, "calls", "tool calls"),
            (b.sign_ins, "signins", "sign-ins"),
        ]
        .into_iter()
        .enumerate()
        {
            let h = n * plot_h / max;
            bars.push(Bar {
                x: x0 + k as i64 * bar_w,
                y: TOP + plot_h - h,
                w: bar_w,
                h,
                class,
                title: format!("{at}: {n} {what}"),
            });
        }
    }
    Chart {
        bars,
        max,
        from_label: pages::when(Some(from)),
        to_label: pages::when(Some(from + width * buckets.len() as i64)),
        total_calls: buckets.iter().map(|b| b.tool_calls).sum(),
        total_sign_ins: buckets.iter().map(|b| b.sign_ins).sum(),
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        top: TOP,
        baseline: TOP + plot_h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_count() {
        let b = [
            Activity {
                tool_calls: 4,
                sign_ins: 1,
            },
            Activity::default(),
        ];
        let c = chart(0, 3600, &b);
        assert_eq!(c.bars.len(), 4);
        assert_eq!(c.max, 4);
        assert_eq!(
            c.bars[0].h,
            HEIGHT - TOP - BOTTOM,
            "the largest fills the plot"
        );
        assert_eq!(c.bars[0].y + c.bars[0].h, c.baseline);
        assert_eq!(c.bars[1].h, (HEIGHT - TOP - BOTTOM) / 4);
        assert_eq!(c.bars[2].h, 0);
        assert_eq!((c.total_calls, c.total_sign_ins), (4, 1));
        assert!(c.bars[0].title.ends_with("4 tool calls"));
    }
}
