//! Markov-chain baselines for next-k-mer prediction.
//!
//! An order-`m` chain is a table of `(m+1)`-mer counts over the training sequence; the
//! last base is the low two bits of the index (A=0, T=1, C=2, G=3), so the four
//! continuations of a context sit side by side. With add-α smoothing,
//!
//! `P(b | ctx) = (count[ctx·4 + b] + α) / (Σ_b' count[ctx·4 + b'] + 4α)`,
//!
//! and the probability of a next k-mer `x1..xk` after a context is, by the chain rule,
//! `Π_i P(x_i | last m bases of context + x1..x_{i-1})`.

use crate::error::{Error, Result};
use crate::genome::Genome;
use crate::windows::{oriented_slice, Window};

/// Highest supported order (4^13 counts = 256 MiB).
pub const MAX_ORDER: usize = 12;

/// Counts of an order-`m` chain.
#[derive(Debug, Clone)]
pub struct MarkovChain {
    order: usize,
    counts: Vec<u32>,
}

/// Merge the spans `[start, start + span)` of windows into disjoint sorted intervals
/// `(record, start, end)`, so each training base is counted once.
#[must_use]
pub fn merged_spans(windows: &[Window], span: u64) -> Vec<(usize, u64, u64)> {
    let mut spans: Vec<(usize, u64)> = windows.iter().map(|w| (w.rec as usize, w.start)).collect();
    spans.sort_unstable();
    let mut out: Vec<(usize, u64, u64)> = Vec::new();
    for (rec, start) in spans {
        match out.last_mut() {
            Some(last) if last.0 == rec && start <= last.2 => last.2 = last.2.max(start + span),
            _ => out.push((rec, start, start + span)),
        }
    }
    out
}

impl MarkovChain {
    /// An empty chain of order `order`.
    pub fn new(order: usize) -> Result<Self> {
        if order > MAX_ORDER {
            return Err(Error::invalid(format!(
                "Markov order must be between 0 and {MAX_ORDER}, got {order}"
            )));
        }
        Ok(MarkovChain {
            order,
            counts: vec![0; 1 << (2 * (order + 1))],
        })
    }

    /// Fit on record intervals `(record, start, end)` of ACGT-only bases, read on the
    /// `+` strand if `plus` and reverse-complemented if `minus`.
    pub fn fit(
        genome: &Genome,
        intervals: &[(usize, u64, u64)],
        plus: bool,
        minus: bool,
        order: usize,
    ) -> Result<Self> {
        let mut chain = Self::new(order)?;
        let mut buf = Vec::new();
        for &(rec, start, end) in intervals {
            buf.clear();
            let offset = genome.records()[rec].offset;
            genome.codes_into(offset + start, offset + end, &mut buf);
            if plus {
                chain.add_sequence(&buf)?;
            }
            if minus {
                buf.reverse();
                for c in &mut buf {
                    *c ^= 1;
                }
                chain.add_sequence(&buf)?;
            }
        }
        Ok(chain)
    }

    /// Count every `(order+1)`-mer of an ACGT-only code sequence.
    pub fn add_sequence(&mut self, codes: &[u8]) -> Result<()> {
        let width = self.order + 1;
        let mask = (1usize << (2 * width)) - 1;
        let mut index = 0usize;
        for (pos, &c) in codes.iter().enumerate() {
            if c > 3 {
                return Err(Error::invalid(format!(
                    "base code {c} at {pos} is not A/C/G/T"
                )));
            }
            index = (index << 2 | c as usize) & mask;
            if pos + 1 >= width {
                self.counts[index] += 1;
            }
        }
        Ok(())
    }

    #[must_use]
    pub fn order(&self) -> usize {
        self.order
    }

    /// The `(order+1)`-mer counts, indexed by canonical k-mer index.
    #[must_use]
    pub fn counts(&self) -> &[u32] {
        &self.counts
    }

    /// log2 P(b | context) for the four bases, `context` the index of the last `order` bases.
    #[inline]
    fn next_log2(&self, context: usize, alpha: f64) -> [f64; 4] {
        let c: [u32; 4] = self.counts[context * 4..context * 4 + 4]
            .try_into()
            .expect("four counts");
        let total =
            f64::from(c[0]) + f64::from(c[1]) + f64::from(c[2]) + f64::from(c[3]) + 4.0 * alpha;
        c.map(|n| ((f64::from(n) + alpha) / total).log2())
    }

    /// log2 of the largest next-base probability over all contexts: every step of a
    /// path multiplies its probability by at most this much.
    #[must_use]
    pub fn max_step_log2(&self, alpha: f64) -> f64 {
        let best = self
            .counts
            .chunks_exact(4)
            .map(|c| {
                let max = c.iter().copied().max().unwrap_or(0);
                let total: u64 = c.iter().map(|&n| u64::from(n)).sum();
                (f64::from(max) + alpha) / (total as f64 + 4.0 * alpha)
            })
            .fold(0.0f64, f64::max);
        best.log2()
    }

    /// log2 probability of the k-mer `label` (canonical index) after `history`, and the
    /// `top` most probable k-mers (by probability, then smaller index), best first.
    /// `history` holds at least `order` codes; only its last `order` are used;
    /// `max_step_log2` is [`Self::max_step_log2`].
    #[must_use]
    pub fn score(
        &self,
        history: &[u8],
        label: u32,
        k: usize,
        alpha: f64,
        top: usize,
        max_step_log2: f64,
    ) -> (f64, Vec<u32>) {
        let ctx_mask = (1usize << (2 * self.order)) - 1;
        let start_ctx = history[history.len() - self.order..]
            .iter()
            .fold(0usize, |acc, &c| (acc << 2 | c as usize) & ctx_mask);
        let mut ctx = start_ctx;
        let mut log2p = 0.0;
        for i in (0..k).rev() {
            let b = ((label >> (2 * i)) & 3) as usize;
            log2p += self.next_log2(ctx, alpha)[b];
            ctx = (ctx << 2 | b) & ctx_mask;
        }
        let mut best = TopKmers::new(top);
        let search = Search {
            chain: self,
            alpha,
            ctx_mask,
            max_step_log2,
        };
        search.visit(start_ctx, k, 0, 0.0, &mut best);
        (
            log2p,
            best.items.into_iter().map(|(_, kmer)| kmer).collect(),
        )
    }
}

/// Exact top-N search of the 4^k next k-mers: depth-first in index order, skipping a
/// subtree when even its best conceivable completion (every remaining step at the
/// chain's largest next-base probability) falls below the current N-th best.
struct Search<'a> {
    chain: &'a MarkovChain,
    alpha: f64,
    ctx_mask: usize,
    max_step_log2: f64,
}

impl Search<'_> {
    fn visit(&self, ctx: usize, left: usize, prefix: u32, log2p: f64, best: &mut TopKmers) {
        if left == 0 {
            best.offer(log2p, prefix);
            return;
        }
        if log2p + left as f64 * self.max_step_log2 < best.threshold() {
            return;
        }
        let next = self.chain.next_log2(ctx, self.alpha);
        for (b, lp) in next.iter().enumerate() {
            let child_ctx = (ctx << 2 | b) & self.ctx_mask;
            self.visit(
                child_ctx,
                left - 1,
                prefix << 2 | b as u32,
                log2p + lp,
                best,
            );
        }
    }
}

/// The N best (log2p, k-mer) pairs, sorted by probability then index.
struct TopKmers {
    n: usize,
    items: Vec<(f64, u32)>,
}

impl TopKmers {
    fn new(n: usize) -> Self {
        TopKmers {
            n,
            items: Vec::with_capacity(n + 1),
        }
    }

    fn threshold(&self) -> f64 {
        if self.items.len() < self.n {
            f64::NEG_INFINITY
        } else {
            self.items[self.n - 1].0
        }
    }

    /// Offer a k-mer; k-mers come in increasing index order, so an equal probability
    /// never displaces an earlier (smaller) k-mer.
    fn offer(&mut self, log2p: f64, kmer: u32) {
        if self.items.len() == self.n && log2p <= self.threshold() {
            return;
        }
        let at = self.items.partition_point(|&(p, _)| p >= log2p);
        self.items.insert(at, (log2p, kmer));
        self.items.truncate(self.n);
    }
}

/// Scores of a chain on windows: per window the log2 probability of its true next
/// `k_eval`-mer (the first `k_eval` label bases) and the `top` best `k_eval`-mers
/// (row-major, `windows.len() × top`).
pub struct WindowScores {
    pub log2p: Vec<f64>,
    pub top: Vec<u32>,
    pub n_top: usize,
}

/// Score `chain` on `windows` of the given geometry, on `threads` scoped threads.
pub fn score_windows(
    genome: &Genome,
    chain: &MarkovChain,
    alpha: f64,
    windows: &[Window],
    context_nt: usize,
    k: usize,
    k_eval: usize,
    threads: usize,
) -> Result<WindowScores> {
    if !(alpha > 0.0 && alpha.is_finite()) {
        return Err(Error::invalid(format!(
            "alpha must be a positive number, got {alpha}"
        )));
    }
    if k_eval == 0 || k_eval > k {
        return Err(Error::invalid(format!(
            "k_eval must be between 1 and k = {k}, got {k_eval}"
        )));
    }
    let m = chain.order();
    if m > context_nt {
        return Err(Error::invalid(format!(
            "Markov order {m} needs a context of at least {m} bases; the windows have {context_nt}"
        )));
    }
    let n_top = 5.min(1 << (2 * k_eval));
    let span = (context_nt + k) as u64;
    let mut log2p = vec![0.0f64; windows.len()];
    let mut top = vec![0u32; windows.len() * n_top];
    if windows.is_empty() {
        return Ok(WindowScores { log2p, top, n_top });
    }
    let per = windows.len().div_ceil(threads.max(1));
    let max_step = chain.max_step_log2(alpha);
    std::thread::scope(|s| {
        for ((ws, lp), tp) in windows
            .chunks(per)
            .zip(log2p.chunks_mut(per))
            .zip(top.chunks_mut(per * n_top))
        {
            s.spawn(move || {
                let mut buf = Vec::with_capacity(m + k_eval);
                let from = (context_nt - m) as u64;
                for ((w, lp), tp) in ws.iter().zip(lp.iter_mut()).zip(tp.chunks_exact_mut(n_top)) {
                    oriented_slice(
                        genome,
                        w,
                        span,
                        from,
                        (context_nt + k_eval) as u64,
                        &mut buf,
                    );
                    let label = buf[m..]
                        .iter()
                        .fold(0u32, |acc, &c| acc << 2 | u32::from(c));
                    let (p, best) = chain.score(&buf[..m], label, k_eval, alpha, n_top, max_step);
                    *lp = p;
                    tp.copy_from_slice(&best);
                }
            });
        }
    });
    Ok(WindowScores { log2p, top, n_top })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_chain_rule() {
        let mut c = MarkovChain::new(1).expect("chain");
        c.add_sequence(&[0, 0, 0, 1]).expect("add"); // AA, AA, AT
        assert_eq!(c.counts()[0], 2);
        assert_eq!(c.counts()[1], 1);
        // P(A|A) = (2+1)/(3+4) and P(T|A) = (1+1)/7, so P(AT after A) = 3/7 * 2/7.
        let (lp, top) = c.score(&[0], 0b0001, 2, 1.0, 5, c.max_step_log2(1.0));
        assert!((lp - (3.0f64 / 7.0 * 2.0 / 7.0).log2()).abs() < 1e-12);
        assert_eq!(top[0], 0); // AA
        assert_eq!(top.len(), 5);
    }

    #[test]
    fn merges_overlapping_spans() {
        let w = |rec, start| Window {
            rec,
            start,
            minus: false,
            split: 0,
        };
        let m = merged_spans(&[w(0, 10), w(0, 0), w(0, 30), w(1, 5)], 12);
        assert_eq!(m, vec![(0, 0, 22), (0, 30, 42), (1, 5, 17)]);
    }
}
