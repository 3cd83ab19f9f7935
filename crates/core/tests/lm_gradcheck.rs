//! Finite-difference gradient checks (f64, dropout off) of every parameter of the stacked
//! character model: LSTM, GRU and RNN, 2 layers, one-hot and embedding input, many-to-one and
//! many-to-many targets, with a non-zero carried initial state.

use rnnlab_core::lm::{backward, forward, Cell, CharLm, LmConfig, Vocab, Workspace};
use rnnlab_core::random::RandomState;

fn setup(
    cell: Cell,
    embedding: Option<usize>,
    t_len: usize,
    batch: usize,
    last_only: bool,
) -> (CharLm<f64>, Workspace<f64>) {
    let vocab = Vocab::from_text("abcdefg\n").unwrap();
    let cfg = LmConfig {
        cell,
        hidden: vec![5, 4],
        embedding,
        dropout: 0.0,
    };
    let mut model = CharLm::<f64>::new(cfg, vocab, 7).unwrap();
    // larger weights than the default init so every gate is away from its linear regime
    for p in model.params_mut() {
        *p *= 2.0;
    }
    let mut ws = Workspace::new(&model, t_len, batch, last_only).unwrap();
    let mut rng = RandomState::new(3);
    let v = model.vocab().len() as i64;
    let mut draw =
        |n: usize| -> Vec<u32> { (0..n).map(|_| rng.randint(0, v).unwrap() as u32).collect() };
    // a first batch to produce a non-zero carried state
    let (x0, y0) = (
        draw(t_len * batch),
        draw(if last_only { batch } else { t_len * batch }),
    );
    ws.set_batch(&x0, &y0, v as usize).unwrap();
    forward(&model, &mut ws, false, None);
    ws.carry_state();
    let (x, y) = (
        draw(t_len * batch),
        draw(if last_only { batch } else { t_len * batch }),
    );
    ws.set_batch(&x, &y, v as usize).unwrap();
    (model, ws)
}

#[allow(clippy::needless_range_loop)]
fn check(cell: Cell, embedding: Option<usize>, t_len: usize, batch: usize, last_only: bool) {
    let (mut model, mut ws) = setup(cell, embedding, t_len, batch, last_only);
    let state = ws.initial_state();
    assert!(
        state.iter().any(|(h, _)| h.iter().any(|&v| v != 0.0)),
        "carried state should be non-zero"
    );
    forward(&model, &mut ws, false, None);
    backward(&model, &mut ws);
    let analytic = ws.grads.clone();
    let eps = 1e-5;
    let tensors = model.tensors().to_vec();
    for info in &tensors {
        let (mut diff2, mut norm_a, mut norm_n) = (0.0f64, 0.0f64, 0.0f64);
        for i in info.offset..info.offset + info.len {
            let orig = model.params()[i];
            model.params_mut()[i] = orig + eps;
            let plus = forward(&model, &mut ws, false, None);
            model.params_mut()[i] = orig - eps;
            let minus = forward(&model, &mut ws, false, None);
            model.params_mut()[i] = orig;
            let num = (plus - minus) / (2.0 * eps);
            diff2 += (num - analytic[i]).powi(2);
            norm_a += analytic[i].powi(2);
            norm_n += num.powi(2);
        }
        let rel = diff2.sqrt() / (norm_a.sqrt() + norm_n.sqrt());
        eprintln!("{cell:?} {}: rel {rel:.2e}", info.name);
        assert!(norm_a > 0.0, "{}: gradient is identically zero", info.name);
        assert!(
            rel < 1e-6,
            "{cell:?} emb={embedding:?} last_only={last_only}: {} relative error {rel:e}",
            info.name
        );
    }
}

#[test]
fn lstm_one_hot_many_to_many() {
    check(Cell::Lstm, None, 4, 3, false);
}

#[test]
fn lstm_embedding_many_to_one() {
    check(Cell::Lstm, Some(3), 5, 3, true);
}

#[test]
fn rnn_one_hot_many_to_one() {
    check(Cell::Rnn, None, 5, 3, true);
}

#[test]
fn rnn_embedding_many_to_many() {
    check(Cell::Rnn, Some(3), 4, 3, false);
}

#[test]
fn lstm_several_batch_blocks() {
    // 70 sequences = two row blocks of the parallel time loop
    check(Cell::Lstm, None, 3, 70, false);
}

#[test]
fn gru_one_hot_many_to_many() {
    check(Cell::Gru, None, 4, 3, false);
}

#[test]
fn gru_embedding_many_to_one() {
    check(Cell::Gru, Some(3), 5, 3, true);
}

#[test]
fn gru_embedding_many_to_many() {
    check(Cell::Gru, Some(3), 4, 3, false);
}

#[test]
fn gru_several_batch_blocks() {
    // 70 sequences = two row blocks of the parallel time loop
    check(Cell::Gru, None, 3, 70, false);
}
