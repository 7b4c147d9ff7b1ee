//! Training curves as a PNG: negative log likelihood per example against the epoch, for the
//! training set and (when there is one) the validation set, and, for models whose observations
//! have a notion of accuracy, a second panel with the accuracies.
//!
//! Rendering is pure Rust and needs nothing from the system: plotters' bitmap backend draws the
//! chart, and text is rasterized with `ab_glyph` from a DejaVu Sans font embedded in the binary
//! (`assets/fonts`), so neither a font library nor fontconfig nor any installed font is used. The
//! picture is drawn at `SCALE` times its size and averaged down, which anti-aliases the curves.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};

use crate::train::run::EpochMetrics;

/// Size of the picture in pixels.
const WIDTH: u32 = 900;
const HEIGHT: u32 = 500;
/// Supersampling factor: everything is drawn this many times larger, then averaged down.
const SCALE: u32 = 3;

/// The font family every text style below asks for; the embedded font is registered under it
/// (plotters uses it to measure text; `Canvas` draws it).
const FAMILY: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Colours of the curves (matplotlib's "tab:blue" and "tab:orange").
const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const VALID_COLOR: RGBColor = RGBColor(255, 127, 14);
const TEXT_COLOR: RGBColor = RGBColor(30, 30, 30);
const LABEL_COLOR: RGBColor = RGBColor(70, 70, 70);

/// With at most this many epochs, each point also gets a marker.
const MARKER_LIMIT: usize = 40;

/// Log-scale the NLL axis when the values are all positive and span more than this ratio.
const LOG_SPAN: f64 = 100.0;

/// Draw the training curves of `history` to the PNG file `path`, with `title` above them.
///
/// The file is written by [`circ_runtime::files::output::write_with`]: atomically for a regular file, so
/// a reader never sees half a picture; directly into a device or FIFO; through a symbolic link.
/// The output is always PNG, whatever the extension of `path`. Non-finite values are left out of
/// the curves.
pub fn loss_curves(path: &Path, title: &str, history: &[EpochMetrics]) -> Result<(), String> {
    if history.is_empty() {
        return Err("no epochs to plot: the training history is empty".into());
    }
    let font = font()?;
    let curves = Curves::new(history);
    let pixels = render(font, title, &curves)?;
    circ_runtime::files::output::write_with(path, |w| encode_png(w, &pixels)).map_err(|e| e.to_string())
}

/// The embedded font, parsed and registered with plotters once per process.
fn font() -> Result<&'static FontRef<'static>, String> {
    static FONT: OnceLock<Result<FontRef<'static>, String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let bad = || "the embedded font (assets/fonts/DejaVuSans.ttf) cannot be loaded".to_string();
        register_font(FAMILY, FontStyle::Normal, FONT_BYTES).map_err(|_| bad())?;
        FontRef::try_from_slice(FONT_BYTES).map_err(|_| bad())
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Encode the final `WIDTH`×`HEIGHT` RGB pixels as PNG.
fn encode_png(w: &mut dyn std::io::Write, pixels: &[u8]) -> std::io::Result<()> {
    let to_io = |e: png::EncodingError| match e {
        png::EncodingError::IoError(e) => e,
        e => std::io::Error::other(e),
    };
    let mut encoder = png::Encoder::new(w, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(to_io)?;
    writer.write_image_data(pixels).map_err(to_io)?;
    writer.finish().map_err(to_io)
}

/// Pixels at the supersampled size.
fn px(v: u32) -> u32 {
    v * SCALE
}

/// The finite points of each curve, as (epoch, value).
struct Curves {
    /// First and last epoch of the history.
    epochs: (f64, f64),
    train_nll: Vec<(f64, f64)>,
    valid_nll: Vec<(f64, f64)>,
    train_acc: Vec<(f64, f64)>,
    valid_acc: Vec<(f64, f64)>,
    /// Whether the history records accuracies at all (even if none of them is finite).
    has_accuracy: bool,
}

impl Curves {
    fn new(history: &[EpochMetrics]) -> Self {
        let series = |f: &dyn Fn(&EpochMetrics) -> Option<f64>| -> Vec<(f64, f64)> {
            let mut v: Vec<(f64, f64)> =
                history.iter().filter_map(|m| f(m).filter(|x| x.is_finite()).map(|x| (m.epoch as f64, x))).collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            v
        };
        let lo = history.iter().map(|m| m.epoch).min().unwrap_or(1) as f64;
        let hi = history.iter().map(|m| m.epoch).max().unwrap_or(1) as f64;
        Curves {
            epochs: (lo, hi),
            train_nll: series(&|m| Some(m.train_nll)),
            valid_nll: series(&|m| m.valid_nll),
            train_acc: series(&|m| m.train_accuracy),
            valid_acc: series(&|m| m.valid_accuracy),
            has_accuracy: history.iter().any(|m| m.train_accuracy.is_some() || m.valid_accuracy.is_some()),
        }
    }

    fn markers(&self) -> bool {
        [&self.train_nll, &self.valid_nll, &self.train_acc, &self.valid_acc].iter().map(|c| c.len()).max().unwrap_or(0)
            <= MARKER_LIMIT
    }
}

/// One axis: the plotted range, where the labelled ticks and the faint grid lines go, and whether
/// values are plotted as their base-10 logarithm (then `range` and the ticks are logarithms too).
#[derive(Debug, Clone)]
struct Axis {
    range: Range<f64>,
    ticks: Vec<f64>,
    minor: Vec<f64>,
    log: bool,
}

impl Axis {
    /// Where value `v` is drawn.
    fn map(&self, v: f64) -> f64 {
        if self.log {
            v.log10()
        } else {
            v
        }
    }

    fn label(&self, t: f64) -> String {
        tick_label(if self.log { 10f64.powf(t) } else { t })
    }

    /// The epoch axis: integer ticks at a 1-2-5 step, a little room either side.
    fn epochs((lo, hi): (f64, f64)) -> Axis {
        let span = hi - lo;
        let pad = if span > 0.0 { (span * 0.025).max(0.25) } else { 0.5 };
        let range = lo - pad..hi + pad;
        let step = nice_step(span.max(1.0) / 8.0).max(1.0);
        let ticks = multiples(step, &range).into_iter().filter(|t| *t >= 0.0).collect();
        let minor = if step >= 5.0 { multiples(step / 5.0, &range) } else { Vec::new() };
        Axis { range, ticks, minor, log: false }
    }

    /// The NLL axis, logarithmic when the values are positive and span more than `LOG_SPAN`.
    fn nll(values: impl Iterator<Item = f64> + Clone) -> Axis {
        let lo = values.clone().fold(f64::INFINITY, f64::min);
        let hi = values.fold(f64::NEG_INFINITY, f64::max);
        if !(lo.is_finite() && hi.is_finite()) {
            return Axis::linear(0.0, 1.0);
        }
        if lo > 0.0 && hi / lo > LOG_SPAN {
            return Axis::logarithmic(lo, hi);
        }
        let span = hi - lo;
        let pad = if span > 0.0 { span * 0.06 } else { (hi.abs() * 0.1).max(1e-3) };
        // Don't let the padding alone push an all-positive loss axis below zero.
        let start = if lo >= 0.0 { (lo - pad).max(0.0) } else { lo - pad };
        Axis::linear(start, hi + pad)
    }

    fn linear(lo: f64, hi: f64) -> Axis {
        let range = lo..hi;
        let step = nice_step((hi - lo) / 6.0);
        let minor = multiples(step / 5.0, &range);
        Axis { ticks: multiples(step, &range), minor, range, log: false }
    }

    fn logarithmic(lo: f64, hi: f64) -> Axis {
        let (a, b) = (lo.log10(), hi.log10());
        let pad = (b - a) * 0.04;
        let range = a - pad..b + pad;
        let decades = b - a;
        let (first, last) = (range.start.floor() as i32, range.end.ceil() as i32);
        let inside = |t: f64| t >= range.start && t <= range.end;
        let mut ticks = Vec::new();
        let mut minor = Vec::new();
        let every = (decades / 8.0).ceil().max(1.0) as i32;
        for k in first..=last {
            let base = 10f64.powi(k);
            if k.rem_euclid(every) == 0 {
                ticks.push(k as f64);
            }
            for m in 2..10 {
                let t = (m as f64 * base).log10();
                if decades < 4.0 && (m == 2 || m == 5) {
                    ticks.push(t);
                } else if decades <= 8.0 {
                    minor.push(t);
                }
            }
        }
        ticks.retain(|t| inside(*t));
        minor.retain(|t| inside(*t));
        Axis { range, ticks, minor, log: true }
    }
}

/// Plotters coordinate: linear over `range`, with exactly our ticks (bold) and grid lines (light).
impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let t = if span > 0.0 { (v - self.range.start) / span } else { 0.5 };
        let t = if t.is_finite() { t.clamp(-10.0, 10.0) } else { 0.5 };
        limit.0 + (f64::from(limit.1 - limit.0) * t).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// The accuracy axis: [0, 1] with a hair of room so curves at 0 or 1 stay visible.
fn accuracy_axis() -> Axis {
    let range = -0.02..1.02;
    Axis { ticks: multiples(0.2, &range), minor: multiples(0.05, &range), range, log: false }
}

/// The smallest step of the form {1, 2, 2.5, 5} × 10^k that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * p).find(|s| *s >= raw * (1.0 - 1e-9)).unwrap_or(10.0 * p)
}

/// The multiples of `step` inside `range`, computed as `k * step` to keep them round.
fn multiples(step: f64, range: &Range<f64>) -> Vec<f64> {
    if step.is_nan() || step <= 0.0 || (range.end - range.start) / step > 1000.0 {
        return Vec::new();
    }
    let first = (range.start / step).ceil() as i64;
    let last = (range.end / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A short label for an axis tick: plain decimals for moderate magnitudes, `1e-5` style otherwise.
fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        return "0".into();
    }
    if (1e-3..1e5).contains(&a) {
        // Enough decimals for four significant digits, trailing zeros trimmed.
        let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        let s = format!("{v:.decimals$}");
        let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
        if s == "-0" {
            "0".into()
        } else {
            s
        }
    } else {
        let s = format!("{v:.2e}");
        // "1.00e-5" -> "1e-5", "2.50e7" -> "2.5e7"
        match s.split_once('e') {
            Some((m, e)) => {
                let m = if m.contains('.') { m.trim_end_matches('0').trim_end_matches('.') } else { m };
                format!("{m}e{e}")
            }
            None => s,
        }
    }
}

/// Draw the whole picture at the supersampled size and return it averaged down to
/// `WIDTH`×`HEIGHT` RGB pixels.
fn render(font: &'static FontRef<'static>, title: &str, curves: &Curves) -> Result<Vec<u8>, String> {
    let (w, h) = (px(WIDTH), px(HEIGHT));
    let mut big = vec![255u8; (w * h * 3) as usize];
    {
        let canvas = Canvas { inner: BitMapBackend::with_buffer(&mut big, (w, h)), font };
        let root = canvas.into_drawing_area();
        draw(&root, title, curves).map_err(|e| format!("cannot draw the training curves: {e}"))?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(downsample(&big, WIDTH, HEIGHT, SCALE))
}

/// Average each `scale`×`scale` block of an RGB image.
fn downsample(big: &[u8], w: u32, h: u32, scale: u32) -> Vec<u8> {
    let (w, h, s) = (w as usize, h as usize, scale as usize);
    let big_w = w * s;
    let n = (s * s) as u32;
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let mut sum = [0u32; 3];
            for dy in 0..s {
                let row = ((y * s + dy) * big_w + x * s) * 3;
                for px in big[row..row + 3 * s].chunks_exact(3) {
                    sum[0] += px[0] as u32;
                    sum[1] += px[1] as u32;
                    sum[2] += px[2] as u32;
                }
            }
            let o = (y * w + x) * 3;
            for c in 0..3 {
                out[o + c] = ((sum[c] + n / 2) / n) as u8;
            }
        }
    }
    out
}

type Area<'a> = DrawingArea<Canvas<'a>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, Canvas<'b>, Cartesian2d<Axis, Axis>>;
type DrawResult<T> = Result<T, String>;

fn draw(root: &Area, title: &str, curves: &Curves) -> DrawResult<()> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let title = if title.trim().is_empty() { "training curves" } else { title.trim() };
    let body = root.margin(px(10), px(4), 0, 0);
    let body = body.titled(title, (FAMILY, px(20)).into_font().color(&TEXT_COLOR)).map_err(|x| e(&x))?;

    let (nll_area, acc_area) = if curves.has_accuracy {
        let (l, r) = body.split_horizontally(px(WIDTH * 3 / 5));
        (l, Some(r))
    } else {
        (body, None)
    };
    let x = Axis::epochs(curves.epochs);
    let markers = curves.markers();

    let y = Axis::nll(curves.train_nll.iter().chain(&curves.valid_nll).map(|p| p.1));
    let mut chart = panel(&nll_area, &x, &y, "negative log likelihood per example", 14)?;
    let series = [("train", TRAIN_COLOR, &curves.train_nll), ("validation", VALID_COLOR, &curves.valid_nll)];
    for (label, color, points) in series {
        curve(&mut chart, &y, points, color, label, markers)?;
    }
    if curves.train_nll.is_empty() && curves.valid_nll.is_empty() {
        note(&nll_area, "no finite values")?;
    } else {
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }

    if let Some(area) = acc_area {
        let y = accuracy_axis();
        let mut chart = panel(&area, &x, &y, "accuracy", 4)?;
        let series = [("train", TRAIN_COLOR, &curves.train_acc), ("validation", VALID_COLOR, &curves.valid_acc)];
        for (label, color, points) in series {
            curve(&mut chart, &y, points, color, label, markers)?;
        }
        if curves.train_acc.is_empty() && curves.valid_acc.is_empty() {
            note(&area, "no finite values")?;
        } else {
            legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        }
    }
    Ok(())
}

/// A chart with axes, grid and labels; `left` is the margin before the y labels, in pixels.
fn panel<'a, 'b>(area: &'a Area<'b>, x: &Axis, y: &Axis, y_desc: &str, left: u32) -> DrawResult<Chart<'a, 'b>> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    // Room for the widest tick label plus the rotated axis description.
    let widest = y.ticks.iter().map(|t| y.label(*t).chars().count()).max().unwrap_or(1) as u32;
    let label_width = 40 + 8 * widest;
    let mut chart = ChartBuilder::on(area)
        .margin_top(px(6))
        .margin_bottom(px(6))
        .margin_left(px(left))
        .margin_right(px(20))
        .x_label_area_size(px(44))
        .y_label_area_size(px(label_width))
        .build_cartesian_2d(x.clone(), y.clone())
        .map_err(|x| e(&x))?;
    let x_fmt = |v: &f64| x.label(*v);
    let y_fmt = |v: &f64| y.label(*v);
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FAMILY, px(13)).into_font().color(&LABEL_COLOR))
        .axis_desc_style((FAMILY, px(14)).into_font().color(&TEXT_COLOR))
        .bold_line_style(BLACK.mix(0.13).stroke_width(SCALE))
        .light_line_style(BLACK.mix(0.045).stroke_width(SCALE))
        .axis_style(RGBColor(110, 110, 110).stroke_width(SCALE))
        .set_all_tick_mark_size(px(4))
        .x_label_offset(0)
        .draw()
        .map_err(|x| e(&x))?;
    Ok(chart)
}

fn curve<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    y: &Axis,
    points: &[(f64, f64)],
    color: RGBColor,
    label: &str,
    markers: bool,
) -> DrawResult<()> {
    if points.is_empty() {
        return Ok(());
    }
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let mapped: Vec<(f64, f64)> = points.iter().map(|&(x, v)| (x, y.map(v))).collect();
    let line = color.stroke_width(px(2));
    chart.draw_series(LineSeries::new(mapped.iter().copied(), line)).map_err(|x| e(&x))?.label(label).legend(
        move |(x, y)| {
            let dot = if markers { px(3) } else { 0 };
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (px(22) as i32, 0)], line)
                + Circle::new((px(11) as i32, 0), dot, color.filled())
        },
    );
    if markers {
        chart.draw_series(mapped.iter().map(|&p| Circle::new(p, px(3), color.filled()))).map_err(|x| e(&x))?;
    }
    Ok(())
}

fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, pos: SeriesLabelPosition) -> DrawResult<()> {
    chart
        .configure_series_labels()
        .position(pos)
        .margin(px(10))
        .legend_area_size(px(30))
        .label_font((FAMILY, px(13)).into_font().color(&TEXT_COLOR))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.25).stroke_width(SCALE))
        .draw()
        .map_err(|e| e.to_string())
}

fn note(area: &Area, text: &str) -> DrawResult<()> {
    let (w, h) = area.dim_in_pixel();
    let style = TextStyle::from((FAMILY, px(15)).into_font())
        .color(&RGBColor(130, 130, 130))
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw_text(text, &style, (w as i32 / 2, h as i32 / 2)).map_err(|e| e.to_string())
}

/// plotters' bitmap backend with its text drawing replaced: glyphs are placed with their side
/// bearings and kerning by `ab_glyph` from the embedded font (plotters' own `ab_glyph` text path
/// drops the bearings, which spaces letters unevenly).
struct Canvas<'a> {
    inner: BitMapBackend<'a>,
    font: &'static FontRef<'static>,
}

impl Canvas<'_> {
    /// Width of `text` and the height of a line at `size` pixels.
    fn measure(&self, text: &str, size: f64) -> (f32, f32) {
        let font = self.font.as_scaled(PxScale::from(size as f32));
        let mut width = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                width += font.kern(p, id);
            }
            width += font.h_advance(id);
            prev = Some(id);
        }
        (width, font.ascent() - font.descent())
    }
}

type CanvasError = DrawingErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>;

impl DrawingBackend for Canvas<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), CanvasError> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), CanvasError> {
        self.inner.present()
    }
    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), CanvasError> {
        self.inner.draw_pixel(point, color)
    }
    fn draw_line<S: plotters_backend::BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), CanvasError> {
        self.inner.draw_line(from, to, style)
    }
    fn draw_rect<S: plotters_backend::BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), CanvasError> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), CanvasError> {
        self.inner.draw_path(path, style)
    }
    fn draw_circle<S: plotters_backend::BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), CanvasError> {
        self.inner.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), CanvasError> {
        self.inner.fill_polygon(vert, style)
    }
    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> Result<(), CanvasError> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(&self, text: &str, style: &S) -> Result<(u32, u32), CanvasError> {
        let (w, h) = self.measure(text, style.size());
        Ok((w.ceil() as u32, h.ceil() as u32))
    }

    fn draw_text<S: BackendTextStyle>(&mut self, text: &str, style: &S, pos: BackendCoord) -> Result<(), CanvasError> {
        let color = style.color();
        if color.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let scale = PxScale::from(style.size() as f32);
        let font = self.font.as_scaled(scale);
        let (width, height) = self.measure(text, style.size());
        // Offset of the layout box's top-left corner from the anchor point.
        let dx = match style.anchor().h_pos {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0.0,
            VPos::Center => -height / 2.0,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let (w, h) = self.inner.get_size();
        let mut caret = dx;
        let mut prev = None;
        let mut result = Ok(());
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                caret += font.kern(p, id);
            }
            prev = Some(id);
            let glyph = id.with_scale_and_position(scale, ab_glyph::point(caret, dy + font.ascent()));
            caret += font.h_advance(id);
            let Some(outline) = font.outline_glyph(glyph) else { continue };
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                if result.is_err() || coverage <= 0.0 {
                    return;
                }
                let (x, y) = (bounds.min.x as i32 + gx as i32, bounds.min.y as i32 + gy as i32);
                let (x, y) = transform.transform(x, y);
                let (x, y) = (pos.0 + x, pos.1 + y);
                if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
                    let alpha = color.alpha * f64::from(coverage.min(1.0));
                    result = self.inner.draw_pixel((x, y), BackendColor { alpha, rgb: color.rgb });
                }
            });
            if result.is_err() {
                break;
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn metrics(epoch: u64, train: f64, valid: Option<f64>, acc: Option<(f64, f64)>) -> EpochMetrics {
        EpochMetrics {
            epoch,
            steps: 10,
            train_nll: train,
            valid_nll: valid,
            train_accuracy: acc.map(|a| a.0),
            valid_accuracy: acc.map(|a| a.1),
            seconds: 0.1,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("circ-plot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Width and height from the IHDR chunk, after checking the PNG signature.
    fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.len() > 1000, "suspiciously small PNG: {} bytes", bytes.len());
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        (be(&bytes[16..20]), be(&bytes[20..24]))
    }

    fn no_temp_files_left(dir: &Path) {
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("tmp"))
            .collect();
        assert!(left.is_empty(), "temporary files left behind: {left:?}");
    }

    #[test]
    fn draws_nll_curves() {
        let dir = temp_dir("nll");
        let history: Vec<_> = (1..=30)
            .map(|e| {
                let t = 2.0 * (-(e as f64) / 6.0).exp() + 0.3;
                metrics(e, t, Some(t + 0.05 + 0.004 * e as f64), None)
            })
            .collect();
        let path = dir.join("curves.png");
        loss_curves(&path, "regression", &history).unwrap();
        assert_eq!(png_size(&path), (WIDTH, HEIGHT));
        no_temp_files_left(&dir);
        // Overwriting an existing picture works too.
        loss_curves(&path, "regression", &history[..5]).unwrap();
        assert_eq!(png_size(&path), (WIDTH, HEIGHT));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn draws_accuracy_panel() {
        let dir = temp_dir("acc");
        let history: Vec<_> = (1..=12)
            .map(|e| {
                let x = e as f64;
                let acc = (1.0 - 0.9 * (-x / 3.0).exp(), 1.0 - 0.92 * (-x / 3.5).exp());
                metrics(e, 2.3 * (-x / 2.0).exp() + 0.01, Some(2.3 * (-x / 2.5).exp() + 0.05), Some(acc))
            })
            .collect();
        let path = dir.join("classifier.png");
        loss_curves(&path, "mnist classifier", &history).unwrap();
        assert_eq!(png_size(&path), (WIDTH, HEIGHT));
        no_temp_files_left(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn handles_negative_single_and_non_finite_values() {
        let dir = temp_dir("odd");
        // Continuous likelihoods give negative NLLs; a NaN epoch is skipped.
        let history = vec![
            metrics(1, 0.5, None, None),
            metrics(2, f64::NAN, None, None),
            metrics(3, -1.2, None, None),
            metrics(4, -2.0, None, None),
        ];
        let path = dir.join("negative.png");
        loss_curves(&path, "density", &history).unwrap();
        assert_eq!(png_size(&path), (WIDTH, HEIGHT));
        let single = dir.join("single.png");
        loss_curves(&single, "", &[metrics(1, 1.0, Some(1.1), Some((0.5, f64::INFINITY)))]).unwrap();
        assert_eq!(png_size(&single), (WIDTH, HEIGHT));
        let nothing = dir.join("nothing");
        loss_curves(&nothing, "diverged", &[metrics(1, f64::NAN, Some(f64::INFINITY), None)]).unwrap();
        assert_eq!(png_size(&nothing), (WIDTH, HEIGHT), "PNG even without a .png extension");
        no_temp_files_left(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn log_scale_only_for_wide_positive_ranges() {
        assert!(Axis::nll([100.0, 0.01].into_iter()).log);
        assert!(!Axis::nll([3.0, 0.5].into_iter()).log);
        assert!(!Axis::nll([100.0, -0.01].into_iter()).log);
        let wide = Axis::nll([500.0, 0.001].into_iter());
        let labels: Vec<_> = wide.ticks.iter().map(|t| wide.label(*t)).collect();
        assert_eq!(labels, ["0.001", "0.01", "0.1", "1", "10", "100"]);
        let narrow = Axis::nll([3.0, 0.5].into_iter());
        assert!(narrow.range.start <= 0.5 && narrow.range.end >= 3.0);
        assert!(narrow.ticks.len() >= 4, "{narrow:?}");
    }

    #[test]
    fn epoch_ticks_are_integers() {
        for (lo, hi) in [(1.0, 1.0), (1.0, 3.0), (1.0, 12.0), (1.0, 30.0), (1.0, 1000.0), (5.0, 7.0)] {
            let x = Axis::epochs((lo, hi));
            assert!(x.range.start < lo && x.range.end > hi);
            assert!(!x.ticks.is_empty() && x.ticks.len() <= 12, "{lo}..{hi}: {x:?}");
            assert!(x.ticks.iter().all(|t| t.fract() == 0.0), "{x:?}");
        }
    }

    #[test]
    fn empty_history_is_an_error() {
        let dir = temp_dir("empty");
        let path = dir.join("empty.png");
        let e = loss_curves(&path, "x", &[]).unwrap_err();
        assert!(e.contains("empty"), "{e}");
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unwritable_directory_is_an_error() {
        let path = std::env::temp_dir().join("circ-plot-no-such-dir").join("sub").join("x.png");
        let e = loss_curves(&path, "x", &[metrics(1, 1.0, None, None)]).unwrap_err();
        assert!(e.contains("circ-plot-no-such-dir"), "{e}");
        assert!(!path.exists());
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(1.0), "1");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(0.1 + 0.2), "0.3");
        assert_eq!(tick_label(-1.5), "-1.5");
        assert_eq!(tick_label(1234.0), "1234");
        assert_eq!(tick_label(12.25), "12.25");
        assert_eq!(tick_label(0.001), "0.001");
        assert_eq!(tick_label(1e-5), "1e-5");
        assert_eq!(tick_label(2.5e7), "2.5e7");
    }
}
