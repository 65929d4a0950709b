//! A segment of a batch read closely: the points between its elements, where the
//! cursor is at each, and the longest stretch of it that later bytes redraw (see
//! the parent module's comment).

use std::ops::Range;

use super::{printable_len, sgr, Skip};

/// A place between two elements of a segment.
struct Point {
    at: usize,
    /// The cursor's column there, if known (`cols` means "after the last column").
    col: Option<u16>,
    /// Line feeds and wraps in the segment before it (never more than happened).
    adv: u32,
    /// The length of the printable run that starts there.
    run: usize,
}

#[derive(Default)]
pub(super) struct Segment {
    /// Whether a scroll region is set (nothing is skipped then).
    region: bool,
    col: Option<u16>,
    adv: u32,
    points: Vec<Point>,
    /// Printable runs whose column at the start is not known: where, how long, and
    /// the line feeds and wraps before them.
    blind: Vec<(usize, usize, u32)>,
    sgrs: Vec<(Range<usize>, bool)>,
}

thread_local! {
    /// The segment's buffers from this thread's last scan, for the next one. A batch
    /// of coloured lines is one segment of tens of thousands of points: growing them
    /// afresh for every batch copied them over and over and faulted in new pages.
    pub(super) static SEGMENT: std::cell::RefCell<Segment> = std::cell::RefCell::default();
}

/// Most points whose room is kept between scans (24 bytes each).
pub(super) const KEPT_POINTS: usize = 48 * 1024;

impl Segment {
    /// Gives back the room beyond `points` points (and as many runs and colours).
    pub(super) fn keep_at_most(&mut self, points: usize) {
        self.points.clear();
        self.blind.clear();
        self.sgrs.clear();
        self.points.shrink_to(points);
        self.blind.shrink_to(points);
        self.sgrs.shrink_to(points);
    }

    /// Begins a segment at `at`, reusing the space of the last one.
    fn open(&mut self, at: usize, region: bool) {
        (self.region, self.col, self.adv) = (region, None, 0);
        self.points.clear();
        self.blind.clear();
        self.sgrs.clear();
        self.point(at);
    }

    /// Reads the segment `range` of `batch` (simple bytes and SGR sequences only).
    pub(super) fn read(&mut self, batch: &[u8], range: Range<usize>, region: bool, cols: u16) {
        self.open(range.start, region);
        let mut i = range.start;
        while i < range.end {
            let b = batch[i];
            if (0x20..=0x7e).contains(&b) {
                let len = printable_len(&batch[i..range.end]);
                self.run(i, len, cols);
                i += len;
            } else if let Some((len, reset)) = sgr(&batch[i..range.end]) {
                self.sgr(i, len, reset);
                i += len;
            } else {
                self.control(i, b, cols);
                i += 1;
            }
        }
    }

    fn point(&mut self, at: usize) {
        self.points.push(Point { at, col: self.col, adv: self.adv, run: 0 });
    }

    fn run(&mut self, at: usize, len: usize, cols: u16) {
        if let Some(last) = self.points.last_mut() {
            last.run = len;
        }
        let cols = usize::from(cols);
        match self.col {
            Some(col) => {
                let total = usize::from(col) + len;
                self.adv += u32::try_from((total - 1) / cols).unwrap_or(u32::MAX);
                self.col = u16::try_from((total - 1) % cols + 1).ok();
            }
            None => {
                self.blind.push((at, len, self.adv));
                self.adv += u32::try_from((len - 1) / cols).unwrap_or(u32::MAX);
            }
        }
        self.point(at + len);
    }

    fn control(&mut self, at: usize, b: u8, cols: u16) {
        match b {
            b'\r' => self.col = Some(0),
            b'\n' | 0x0b | 0x0c => self.adv += 1,
            0x08 => self.col = self.col.map(|c| c.saturating_sub(1)),
            _ => self.col = self.col.map(|c| (c - c % 8 + 8).min(cols - 1)),
        }
        self.point(at + 1);
    }

    fn sgr(&mut self, at: usize, len: usize, reset: bool) {
        self.sgrs.push((at..at + len, reset));
        self.point(at + len);
    }

    /// The longest skip in this segment, if longer than `than`.
    pub(super) fn best(&self, batch: &[u8], rows: u16, cols: u16, than: usize) -> Option<Skip> {
        // A skip needs at least a run and the point after it.
        if self.region || self.points.len() < 2 {
            return None;
        }
        let need = 2 * u32::from(rows);
        let total = self.adv;
        let mut best: Option<Range<usize>> = None;
        let mut consider = |range: Range<usize>| {
            if range.len() > best.as_ref().map_or(than, |b| b.len().max(than)) {
                best = Some(range);
            }
        };
        // Scrolled away: from a point back to a later one at the same column.
        let known = self.points.iter().find(|p| p.col.is_some());
        let zero = self.points.iter().find(|p| p.col == Some(0));
        for start in [known, zero].into_iter().flatten() {
            let mut ends = self.points.iter().rev();
            if let Some(end) = ends.find(|p| p.at > start.at && p.col == start.col && total - p.adv >= need) {
                consider(start.at..end.at);
            }
        }
        // Scrolled away inside one run of unknown column: a multiple of `cols` leaves
        // the cursor as it was. Its first bytes may complete a character cut by a read.
        let cols_n = usize::from(cols);
        for &(at, len, adv_before) in &self.blind {
            let adv_after = total - adv_before - u32::try_from((len - 1) / cols_n).unwrap_or(u32::MAX);
            let start = at + 4;
            let chars = (at + len).saturating_sub(start);
            let short = usize::try_from(need.saturating_sub(adv_after)).unwrap_or(usize::MAX);
            // Advances after the cut, counted as for a run of unknown column: (rem - 1) / cols.
            let k = if short == 0 {
                chars / cols_n
            } else {
                chars.checked_sub(short * cols_n + 1).map_or(0, |room| room / cols_n)
            };
            if k > 0 {
                consider(start..start + k * cols_n);
            }
        }
        // Overwritten on one row: from a point at column 0 to a later one on the same
        // row and column, when the run there covers every cell written in between.
        let mut stretch: Option<(usize, u32, usize)> = None;
        for p in &self.points {
            if p.col == Some(0) {
                match stretch {
                    Some((start, adv, extent)) if adv == p.adv => {
                        if p.run >= extent && p.at > start {
                            consider(start..p.at);
                        }
                    }
                    _ => stretch = Some((p.at, p.adv, 0)),
                }
            }
            match (&mut stretch, p.col) {
                (Some((_, adv, extent)), Some(col)) if *adv == p.adv => {
                    *extent = (*extent).max(usize::from(col) + p.run);
                }
                _ => stretch = None,
            }
        }
        let range = best?;
        let within: Vec<_> = self.sgrs.iter().filter(|(r, _)| range.start <= r.start && r.end <= range.end).collect();
        let from = within.iter().rposition(|(_, reset)| *reset).unwrap_or(0);
        let replay = within[from..].iter().flat_map(|(r, _)| &batch[r.clone()]).copied().collect();
        Some(Skip { range, replay })
    }
}
