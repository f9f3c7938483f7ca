//! Activity charts: two counts per time bucket (tool calls and sign-ins on the admin
//! pages; an app's allowed and refused calls on the connected-apps page), drawn as
//! inline SVG in the page itself. No script, no external asset and no inline style, so
//! the pages' CSP (`default-src 'none'; style-src 'self'`) holds: shapes are coloured
//! by classes of the page's own stylesheet.

use mcpgate_domain::model::Activity;

use crate::pages;

/// What one of a chart's two series counts: the stylesheet's class and the tooltip's
/// words.
#[derive(Debug, Clone, Copy)]
pub struct Series {
    pub class: &'static str,
    pub what: &'static str,
}

/// Tool calls and sign-ins (the admin pages).
pub const CALLS_AND_SIGN_INS: [Series; 2] = [
    Series {
        class: "calls",
        what: "tool calls",
    },
    Series {
        class: "signins",
        what: "sign-ins",
    },
];

/// An app's tool calls, allowed and refused (the connected-apps page).
pub const ALLOWED_AND_REFUSED: [Series; 2] = [
    Series {
        class: "calls",
        what: "calls allowed",
    },
    Series {
        class: "refused",
        what: "calls refused",
    },
];

/// A chart's drawing area, in SVG user units (the page scales it to its width).
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub width: i64,
    pub height: i64,
    pub left: i64,
    pub top: i64,
    pub bottom: i64,
}

/// The admin pages' chart, a page wide.
pub const FULL: Frame = Frame {
    width: 720,
    height: 200,
    left: 40,
    top: 10,
    bottom: 24,
};

/// A table cell's chart (an app's thirty days): fewer units, so its bars stay visible
/// when drawn small.
pub const SMALL: Frame = Frame {
    width: 186,
    height: 60,
    left: 24,
    top: 6,
    bottom: 4,
};

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
    /// Each series' sum over the chart.
    pub totals: [i64; 2],
    pub width: i64,
    pub height: i64,
    pub left: i64,
    pub top: i64,
    pub baseline: i64,
}

/// The admin pages' chart of tool calls and sign-ins.
pub fn chart(from: i64, width: i64, buckets: &[Activity]) -> Chart {
    let pairs: Vec<[i64; 2]> = buckets.iter().map(|b| [b.tool_calls, b.sign_ins]).collect();
    pairs_chart(FULL, from, width, &pairs, CALLS_AND_SIGN_INS)
}

/// Lays out `buckets` (each `width` seconds from `from`) as paired bars of `series`
/// in `frame`.
pub fn pairs_chart(
    frame: Frame,
    from: i64,
    width: i64,
    buckets: &[[i64; 2]],
    series: [Series; 2],
) -> Chart {
    let Frame {
        width: fw,
        height: fh,
        left,
        top,
        bottom,
    } = frame;
    let max = buckets
        .iter()
        .map(|b| b[0].max(b[1]))
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = fw - left - 4;
    let plot_h = fh - top - bottom;
    let slot = plot_w / (buckets.len().max(1) as i64);
    let bar_w = ((slot - 2) / 2).max(1);
    let mut bars = Vec::with_capacity(buckets.len() * 2);
    for (i, b) in buckets.iter().enumerate() {
        let x0 = left + i as i64 * slot + 1;
        let at = pages::when(Some(from + i as i64 * width));
        for (k, (n, Series { class, what })) in b.iter().copied().zip(series).enumerate() {
            let h = n * plot_h / max;
            bars.push(Bar {
                x: x0 + k as i64 * bar_w,
                y: top + plot_h - h,
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
        totals: [
            buckets.iter().map(|b| b[0]).sum(),
            buckets.iter().map(|b| b[1]).sum(),
        ],
        width: fw,
        height: fh,
        left,
        top,
        baseline: top + plot_h,
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
            FULL.height - FULL.top - FULL.bottom,
            "the largest fills the plot"
        );
        assert_eq!(c.bars[0].y + c.bars[0].h, c.baseline);
        assert_eq!(c.bars[1].h, (FULL.height - FULL.top - FULL.bottom) / 4);
        assert_eq!(c.bars[2].h, 0);
        assert_eq!(c.totals, [4, 1]);
        assert!(c.bars[0].title.ends_with("4 tool calls"));
    }
}
