//! Beam search (`nn::beam`) through both models: on tiny models with random fixed-seed weights
//! a beam wide enough to keep every candidate returns exactly the brute-force K best; width 1
//! is greedy decoding; every log-probability is the sum of the model's log-softmax values,
//! recomputed here independently of the search.

use ndarray::Array2;
use rnnlab_core::dinos::{beam_names, initialize_parameters_seeded, CharRnnParams};
use rnnlab_core::lm::{
    beam_generate, generate, logits_for, Cell, CharLm, LmConfig, SampleOptions, Vocab,
};

mod common;
use common::sonnets;

fn log_softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
    z.iter().map(|v| v - lse).collect()
}

/// Best first; equal scores by their symbol sequences (the search's stated order).
fn rank(all: &mut [(f64, Vec<usize>)]) {
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
}

/// Every sequence of `len` symbols below `v`, in lexicographic order.
fn sequences(v: usize, len: usize) -> Vec<Vec<usize>> {
    (0..v.pow(len as u32))
        .map(|mut n| {
            let mut s = vec![0; len];
            for slot in s.iter_mut().rev() {
                *slot = n % v;
                n /= v;
            }
            s
        })
        .collect()
}

// ---------------------------------------------------------------- the language model

fn tiny_lm(cell: Cell, text: &str, hidden: Vec<usize>, seed: u32) -> CharLm<f64> {
    let cfg = LmConfig {
        cell,
        hidden,
        embedding: None,
        dropout: 0.0,
    };
    let mut m = CharLm::<f64>::new(cfg, Vocab::from_text(text).unwrap(), seed).unwrap();
    // sharper distributions than the initialisation's near-uniform ones
    for w in m.params_mut() {
        *w *= 4.0;
    }
    m
}

/// ln P(`cont` | `prompt`) from the logits of the whole text, stepped from a zero state.
fn lm_log_prob(m: &CharLm<f64>, prompt: &str, cont: &str) -> f64 {
    let rows = logits_for(m, &format!("{prompt}{cont}")).unwrap();
    let start = prompt.chars().count() - 1;
    cont.chars()
        .enumerate()
        .map(|(t, ch)| {
            let ix = m.vocab().get(ch).unwrap() as usize;
            log_softmax(&rows[start + t])[ix]
        })
        .sum()
}

#[test]
fn lm_beam_wide_enough_is_the_exhaustive_k_best() {
    for (cell, seed) in [(Cell::Lstm, 3), (Cell::Rnn, 11)] {
        let m = tiny_lm(cell, "\nab", vec![5, 4], seed);
        let (prompt, length) = ("ab", 4);
        let v = m.vocab().len();
        let mut all: Vec<(f64, Vec<usize>)> = sequences(v, length)
            .into_iter()
            .map(|s| {
                let ids: Vec<u32> = s.iter().map(|&i| i as u32).collect();
                (lm_log_prob(&m, prompt, &m.vocab().decode(&ids)), s)
            })
            .collect();
        rank(&mut all);
        // 81 sequences: a beam of 81 keeps every candidate at every step
        let beam = beam_generate(&m, prompt, length, 81).unwrap();
        assert_eq!(beam.len(), all.len());
        for (b, (lp, s)) in beam.iter().zip(&all) {
            let ids: Vec<u32> = s.iter().map(|&i| i as u32).collect();
            assert_eq!(b.text, m.vocab().decode(&ids), "{cell:?}");
            assert!(
                (b.log_prob - lp).abs() < 1e-12,
                "{cell:?}: {} vs {lp}",
                b.log_prob
            );
        }
        let total: f64 = beam.iter().map(|b| b.log_prob.exp()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        // a narrower beam still returns its best first, each scored exactly
        let narrow = beam_generate(&m, prompt, length, 3).unwrap();
        assert_eq!(narrow.len(), 3);
        assert_eq!(narrow[0].text, beam[0].text, "{cell:?}");
        for b in &narrow {
            assert!((b.log_prob - lm_log_prob(&m, prompt, &b.text)).abs() < 1e-12);
        }
    }
}

#[test]
fn lm_width_one_is_greedy_decoding() {
    let text = sonnets(3000);
    for cell in [Cell::Lstm, Cell::Rnn] {
        let m = tiny_lm(cell, &text, vec![16, 12], 5);
        for prompt in ["Shall I", ""] {
            let greedy = generate(
                &m,
                prompt,
                &SampleOptions {
                    length: 60,
                    temperature: 0.0,
                    top_k: 0,
                    seed: 0,
                },
            )
            .unwrap();
            let beam = beam_generate(&m, prompt, 60, 1).unwrap();
            assert_eq!(beam.len(), 1);
            assert_eq!(beam[0].text, greedy, "{cell:?} {prompt:?}");
            let primer = if prompt.is_empty() { "\n" } else { prompt };
            let lp = lm_log_prob(&m, primer, &greedy);
            assert!(
                (beam[0].log_prob - lp).abs() < 1e-9,
                "{} vs {lp}",
                beam[0].log_prob
            );
        }
        // wider beams find sequences at least as likely, best first, each scored exactly
        let wide = beam_generate(&m, "Shall I", 60, 8).unwrap();
        assert_eq!(wide.len(), 8);
        let greedy_lp = beam_generate(&m, "Shall I", 60, 1).unwrap()[0].log_prob;
        assert!(wide[0].log_prob >= greedy_lp - 1e-12);
        assert!(wide.windows(2).all(|w| w[0].log_prob >= w[1].log_prob));
        for b in &wide {
            assert!((b.log_prob - lm_log_prob(&m, "Shall I", &b.text)).abs() < 1e-9);
        }
    }
}

#[test]
fn lm_beam_edges_and_bad_widths() {
    let m = tiny_lm(Cell::Lstm, "\nab", vec![4], 1);
    let empty = beam_generate(&m, "ab", 0, 5).unwrap();
    assert_eq!(
        (empty.len(), empty[0].text.as_str(), empty[0].log_prob),
        (1, "", 0.0)
    );
    // fewer sequences than the width: all of them
    assert_eq!(beam_generate(&m, "", 2, 100).unwrap().len(), 9);
    for width in [0, 10_001] {
        let e = beam_generate(&m, "ab", 3, width).unwrap_err().to_string();
        assert!(
            e.contains("beamWidth") && e.contains(&width.to_string()),
            "{e}"
        );
    }
    let e = beam_generate(&m, "abz", 3, 2).unwrap_err().to_string();
    assert!(e.contains("prompt"), "{e}");
}

#[test]
fn beam_search_does_not_depend_on_the_thread_count() {
    let text = sonnets(2000);
    let m = tiny_lm(Cell::Lstm, &text, vec![12], 2);
    let (params, _) = name_model(6, 5, 4);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            (
                beam_generate(&m, "Shall", 40, 6).unwrap(),
                beam_names(&params, 0, &[1], 8, 6).unwrap(),
            )
        })
    };
    assert_eq!(run(1), run(2));
}

// ---------------------------------------------------------------- the name model

/// Random course parameters with sharper weights than the course's 0.01 scale.
fn name_model(n_a: usize, vocab: usize, seed: u32) -> (CharRnnParams, usize) {
    let mut p = initialize_parameters_seeded(n_a, vocab, vocab, seed);
    for w in [&mut p.wax, &mut p.waa, &mut p.wya] {
        w.mapv_inplace(|v| v * 150.0);
    }
    let mut rs = rnnlab_core::random::RandomState::new(seed + 1);
    p.b = rs.randn2(n_a, 1);
    p.by = rs.randn2(vocab, 1);
    (p, 0)
}

/// The course's forward step written out here: a = tanh(Wax x + Waa a + b), then
/// ln softmax(Wya a + by).
fn naive_step(p: &CharRnnParams, a: &mut Vec<f64>, x: Option<usize>) -> Vec<f64> {
    let (n_a, n_y) = (p.waa.nrows(), p.wya.nrows());
    let col =
        |w: &Array2<f64>, i: usize, v: &[f64]| (0..v.len()).map(|j| w[[i, j]] * v[j]).sum::<f64>();
    let next: Vec<f64> = (0..n_a)
        .map(|i| (p.b[[i, 0]] + x.map_or(0.0, |c| p.wax[[i, c]]) + col(&p.waa, i, a)).tanh())
        .collect();
    *a = next;
    let z: Vec<f64> = (0..n_y).map(|k| p.by[[k, 0]] + col(&p.wya, k, a)).collect();
    log_softmax(&z)
}

/// ln P(name after the prefix, and the newline when `ended`).
fn name_log_prob(
    p: &CharRnnParams,
    nl: usize,
    prefix: &[usize],
    drawn: &[usize],
    ended: bool,
) -> f64 {
    let mut a = vec![0.0; p.waa.nrows()];
    let mut lp = naive_step(p, &mut a, None);
    for &c in prefix {
        lp = naive_step(p, &mut a, Some(c));
    }
    let mut total = 0.0;
    for &c in drawn {
        total += lp[c];
        lp = naive_step(p, &mut a, Some(c));
    }
    if ended {
        total += lp[nl];
    }
    total
}

/// Every name of at most `max` characters: those ending with the newline before `max`, and
/// those cut at `max`; as (score, order key = symbols then the newline if ended, ended).
fn all_names(p: &CharRnnParams, nl: usize, prefix: &[usize], max: usize) -> Vec<(f64, Vec<usize>)> {
    let v = p.wya.nrows();
    let mut out = Vec::new();
    for len in 0..=max {
        for s in sequences(v - 1, len) {
            // symbols other than the newline (index 0)
            let s: Vec<usize> = s.into_iter().map(|i| i + 1).collect();
            let ended = len < max;
            let mut key = s.clone();
            if ended {
                key.push(nl);
            }
            out.push((name_log_prob(p, nl, prefix, &s, ended), key));
        }
    }
    rank(&mut out);
    out
}

#[test]
fn name_beam_wide_enough_is_the_exhaustive_k_best() {
    for (seed, prefix) in [(1u32, vec![]), (2, vec![2]), (7, vec![1, 2])] {
        let (p, nl) = name_model(5, 3, seed);
        let max = 4;
        let all = all_names(&p, nl, &prefix, max);
        assert_eq!(all.len(), 1 + 2 + 4 + 8 + 16);
        // at most 3 · 2³ = 24 candidates per step: a beam of 24 keeps them all
        let beam = beam_names(&p, nl, &prefix, max, 24).unwrap();
        assert_eq!(beam.len(), 24);
        // the newline ends some of the best names early
        assert!(beam
            .iter()
            .take(5)
            .any(|b| b.ended && b.indices.len() < prefix.len() + max));
        for (b, (lp, key)) in beam.iter().zip(&all) {
            let mut got = b.indices[prefix.len()..].to_vec();
            assert_eq!(&b.indices[..prefix.len()], &prefix[..]);
            if b.ended {
                got.push(nl);
            }
            assert_eq!(&got, key, "seed {seed}");
            assert_eq!(b.ended, got.len() <= max && got.last() == Some(&nl));
            assert!((b.log_prob - lp).abs() < 1e-12, "{} vs {lp}", b.log_prob);
        }
        // all 31 names: their probabilities sum to 1
        let every = beam_names(&p, nl, &prefix, max, 100).unwrap();
        assert_eq!(every.len(), 31);
        let total: f64 = every.iter().map(|b| b.log_prob.exp()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
    }
}

#[test]
fn name_width_one_is_greedy_decoding() {
    for seed in 0..6 {
        let (p, nl) = name_model(8, 6, seed);
        for (prefix, max) in [(vec![], 12), (vec![3], 6), (vec![2, 4], 2)] {
            // greedy: the first most likely character, until the newline or `max` characters
            let mut a = vec![0.0; 8];
            let mut lp = naive_step(&p, &mut a, None);
            for &c in &prefix {
                lp = naive_step(&p, &mut a, Some(c));
            }
            let (mut drawn, mut total, mut ended) = (vec![], 0.0, false);
            while drawn.len() < max {
                let best = (0..lp.len()).fold(0, |b, k| if lp[k] > lp[b] { k } else { b });
                total += lp[best];
                if best == nl {
                    ended = true;
                    break;
                }
                drawn.push(best);
                lp = naive_step(&p, &mut a, Some(best));
            }
            let beam = beam_names(&p, nl, &prefix, max, 1).unwrap();
            assert_eq!(beam.len(), 1);
            assert_eq!(beam[0].indices[prefix.len()..], drawn[..], "seed {seed}");
            assert_eq!(beam[0].ended, ended);
            assert!((beam[0].log_prob - total).abs() < 1e-12);
        }
    }
}

#[test]
fn name_beam_refuses_bad_arguments() {
    let (p, nl) = name_model(4, 3, 0);
    let e = beam_names(&p, nl, &[], 5, 0).unwrap_err().to_string();
    assert!(e.contains("beamWidth") && e.contains('0'), "{e}");
    let e = beam_names(&p, nl, &[7], 5, 2).unwrap_err().to_string();
    assert!(e.contains("prefix"), "{e}");
}
