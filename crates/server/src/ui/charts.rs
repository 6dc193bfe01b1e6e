//! Charts drawn on the server as inline SVG: no script, no CDN, no build
//! step. Each is a day-by-day bar chart (stacked when there are several
//! series) that scales to the width of its card, so it reads on a phone;
//! every bar segment carries a `<title>` with its day and number, and the
//! legend under it repeats the totals in text.

use std::fmt::Write;

use chrono::NaiveDate;

/// One stacked series: what it counts and how it is drawn.
pub(super) struct Series {
    pub label: &'static str,
    pub color: &'static str,
    /// The value of each day, in the chart's day order.
    pub values: Vec<f64>,
}

/// A day-by-day chart of one or more stacked series.
pub(super) struct DailyChart<'a> {
    /// Read by screen readers, and the figure's caption.
    pub title: &'a str,
    pub days: &'a [NaiveDate],
    pub series: Vec<Series>,
    /// How a value reads ("3", "1.2 s").
    pub format: fn(f64) -> String,
    /// Counts: the axis marks only whole numbers.
    pub whole_numbers: bool,
}

const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 190.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 6.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;

/// Text for SVG and HTML (the only outside text in a chart is its labels).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The smallest "round" number (1, 2 or 5 times a power of ten) at or above
/// `value`, so the axis reads well.
fn round_up(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * power)
        .find(|candidate| *candidate >= value - 1e-9)
        .unwrap_or(10.0 * power)
}

/// "6 Dec".
pub(super) fn day_label(day: NaiveDate) -> String {
    day.format("%-d %b").to_string()
}

/// A count.
pub(super) fn count(value: f64) -> String {
    format!("{}", value.round() as i64)
}

/// A duration in seconds, as people read it.
pub(super) fn seconds(value: f64) -> String {
    if value < 1.0 {
        format!("{} ms", (value * 1000.0).round() as i64)
    } else if value < 120.0 {
        format!("{value:.1} s")
    } else {
        format!("{:.1} min", value / 60.0)
    }
}

impl DailyChart<'_> {
    /// Whether there is anything to draw.
    pub fn is_empty(&self) -> bool {
        self.series
            .iter()
            .all(|series| series.values.iter().all(|value| *value <= 0.0))
    }

    /// The chart as a `<figure>`: the SVG and a legend with each series'
    /// total over the days shown.
    pub fn render(&self) -> String {
        let days = self.days.len().max(1);
        let totals: Vec<f64> = (0..self.days.len())
            .map(|day| {
                self.series
                    .iter()
                    .map(|series| series.values.get(day).copied().unwrap_or(0.0).max(0.0))
                    .sum()
            })
            .collect();
        let mut top = round_up(totals.iter().copied().fold(0.0, f64::max));
        if self.whole_numbers {
            top = top.max(2.0);
        }
        let plot_width = WIDTH - LEFT - RIGHT;
        let plot_height = HEIGHT - TOP - BOTTOM;
        let slot = plot_width / days as f64;
        let bar = (slot * 0.7).max(1.0);
        let y = |value: f64| TOP + plot_height * (1.0 - value / top);

        let mut svg = String::new();
        let title = escape(self.title);
        let _ = write!(
            svg,
            r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}" xmlns="http://www.w3.org/2000/svg"><title>{title}</title>"#
        );
        // Grid lines and their values: zero, half (when it reads as a
        // count) and the top.
        let half = top / 2.0;
        let marks = if self.whole_numbers && half.fract() != 0.0 {
            vec![0.0, top]
        } else {
            vec![0.0, half, top]
        };
        for value in marks {
            let at = y(value);
            let _ = write!(
                svg,
                r##"<line x1="{LEFT}" x2="{x2}" y1="{at:.1}" y2="{at:.1}" stroke="#d5d9e2" stroke-width="1"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="11" fill="#5b6476">{label}</text>"##,
                x2 = WIDTH - RIGHT,
                tx = LEFT - 4.0,
                ty = at + 4.0,
                label = escape(&(self.format)(value)),
            );
        }
        for (index, day) in self.days.iter().enumerate() {
            let x = LEFT + slot * index as f64 + (slot - bar) / 2.0;
            let mut base = 0.0;
            for series in &self.series {
                let value = series.values.get(index).copied().unwrap_or(0.0);
                if value <= 0.0 {
                    continue;
                }
                let (from, to) = (y(base), y(base + value));
                let _ = write!(
                    svg,
                    r#"<rect x="{x:.1}" y="{to:.1}" width="{bar:.1}" height="{h:.1}" fill="{color}"><title>{day}: {value} {label}</title></rect>"#,
                    h = (from - to).max(0.5),
                    color = series.color,
                    day = day_label(*day),
                    value = escape(&(self.format)(value)),
                    label = escape(series.label),
                );
                base += value;
            }
            // Every third day is labelled, counting back from the last.
            if (self.days.len() - 1 - index).is_multiple_of(3) {
                let _ = write!(
                    svg,
                    r##"<text x="{cx:.1}" y="{ty}" text-anchor="middle" font-size="11" fill="#5b6476">{label}</text>"##,
                    cx = x + bar / 2.0,
                    ty = HEIGHT - 8.0,
                    label = day_label(*day),
                );
            }
        }
        svg.push_str("</svg>");

        let mut legend = String::from(r#"<ul class="legend">"#);
        for series in &self.series {
            let total: f64 = series.values.iter().sum();
            let _ = write!(
                legend,
                r#"<li><span class="swatch" style="background:{color}"></span>{label}: {total}</li>"#,
                color = series.color,
                label = escape(series.label),
                total = escape(&(self.format)(total)),
            );
        }
        legend.push_str("</ul>");
        format!(
            r#"<figure class="chart-figure">{svg}<figcaption class="muted">{title}</figcaption>{legend}</figure>"#
        )
    }
}

/// How many days the charts show.
pub(super) const CHART_DAYS: u32 = 14;

/// The first instant of the oldest day in `days`.
pub(super) fn since(days: &[NaiveDate]) -> chrono::DateTime<chrono::Utc> {
    days.first()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|start| start.and_utc())
        .unwrap_or_default()
}

/// One value per day of `days` from the rows whose status is in `statuses`
/// (summed), as `pick` reads each row.
pub(super) fn per_day(
    days: &[NaiveDate],
    rows: &[store::daily::DayCount],
    statuses: &[&str],
    pick: fn(&store::daily::DayCount) -> f64,
) -> Vec<f64> {
    days.iter()
        .map(|day| {
            rows.iter()
                .filter(|row| row.day == *day && statuses.contains(&row.status.as_str()))
                .map(pick)
                .sum()
        })
        .collect()
}

/// Auto-draft's chart: drafts per day, with skipped and failed stacked.
pub(super) fn autodraft_chart(
    days: &[NaiveDate],
    rows: &[store::daily::DayCount],
) -> Option<String> {
    let counted = |statuses: &[&str]| per_day(days, rows, statuses, |row| row.count as f64);
    let chart = DailyChart {
        title: "Messages per day (UTC), last 14 days",
        days,
        series: vec![
            Series {
                label: "drafted",
                color: "#2f5bd3",
                values: counted(&["drafted"]),
            },
            Series {
                label: "skipped",
                color: "#9aa3b5",
                values: counted(&["skipped"]),
            },
            Series {
                label: "failed",
                color: "#c0392b",
                values: counted(&["failed"]),
            },
        ],
        format: count,
        whole_numbers: true,
    };
    (!chart.is_empty()).then(|| chart.render())
}

/// A workflow's charts: runs per day by status, and how long they took
/// (the mean of the finished runs of each day).
pub(super) fn run_charts(
    days: &[NaiveDate],
    rows: &[store::daily::DayCount],
) -> Option<(String, String)> {
    let counted = |statuses: &[&str]| per_day(days, rows, statuses, |row| row.count as f64);
    let runs = DailyChart {
        title: "Runs per day (UTC), last 14 days",
        days,
        series: vec![
            Series {
                label: "succeeded",
                color: "#2e8b57",
                values: counted(&["succeeded"]),
            },
            Series {
                label: "failed",
                color: "#c0392b",
                values: counted(&["failed"]),
            },
            Series {
                label: "queued, running or retrying",
                color: "#e0a030",
                values: counted(&["queued", "running", "retrying"]),
            },
        ],
        format: count,
        whole_numbers: true,
    };
    if runs.is_empty() {
        return None;
    }
    // The day's mean over its finished runs, whatever their status.
    let finished = ["succeeded", "failed"];
    let weighted = per_day(days, rows, &finished, |row| {
        row.mean_seconds.unwrap_or(0.0) * row.count as f64
    });
    let ended = per_day(days, rows, &finished, |row| {
        if row.mean_seconds.is_some() {
            row.count as f64
        } else {
            0.0
        }
    });
    let mean: Vec<f64> = weighted
        .iter()
        .zip(&ended)
        .map(|(total, count)| if *count > 0.0 { total / count } else { 0.0 })
        .collect();
    let durations = DailyChart {
        title: "Mean time from start to end per day (finished runs)",
        days,
        series: vec![Series {
            label: "mean run time",
            color: "#5b6476",
            values: mean,
        }],
        format: seconds,
        whole_numbers: false,
    };
    Some((runs.render(), durations.render()))
}

/// The last `count` UTC days, oldest first, ending with `today`.
pub(super) fn last_days(today: NaiveDate, count: u32) -> Vec<NaiveDate> {
    (0..count)
        .rev()
        .filter_map(|back| today.checked_sub_days(chrono::Days::new(u64::from(back))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(values: Vec<f64>) -> String {
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let days = last_days(today, 3);
        DailyChart {
            title: "Drafts <per> day",
            days: &days,
            series: vec![
                Series {
                    label: "drafted",
                    color: "#2f5bd3",
                    values,
                },
                Series {
                    label: "failed",
                    color: "#c0392b",
                    values: vec![0.0, 1.0, 0.0],
                },
            ],
            format: count,
            whole_numbers: true,
        }
        .render()
    }

    #[test]
    fn bars_stack_per_day_with_their_numbers_in_words() {
        let svg = chart(vec![2.0, 3.0, 0.0]);
        assert!(svg.contains("<title>5 Dec: 3 drafted</title>"), "{svg}");
        assert!(svg.contains("<title>5 Dec: 1 failed</title>"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 3, "no bar for a zero");
        assert!(svg.contains("drafted: 5</li>") && svg.contains("failed: 1</li>"));
        assert!(svg.contains("Drafts &lt;per&gt; day"), "labels are escaped");
        // The axis tops out at the next round number above the tallest day
        // (4), and marks no half count.
        assert!(svg.contains(">5</text>"), "{svg}");
        assert!(
            !svg.contains(">3</text>") && !svg.contains(">2</text>"),
            "{svg}"
        );
        let single = chart(vec![1.0, 0.0, 0.0]);
        assert!(
            single.contains(">1</text>") && single.contains(">2</text>"),
            "{single}"
        );
    }

    #[test]
    fn axes_round_up_and_durations_read_like_durations() {
        assert_eq!(round_up(0.0), 1.0);
        assert_eq!(round_up(4.0), 5.0);
        assert_eq!(round_up(11.0), 20.0);
        assert_eq!(round_up(0.3), 0.5);
        assert_eq!(seconds(0.25), "250 ms");
        assert_eq!(seconds(1.5), "1.5 s");
        assert_eq!(seconds(600.0), "10.0 min");
        assert_eq!(
            last_days(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(), 2),
            vec![
                NaiveDate::from_ymd_opt(2026, 2, 28).unwrap(),
                NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
            ]
        );
    }
}
