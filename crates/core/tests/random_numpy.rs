//! `RandomState` against numpy's legacy `np.random.RandomState`, bit for bit.
//! Reference data: tests/data/numpy_random.json, written by scripts/numpy_random_vectors.py
//! (floats are stored as their IEEE-754 bit patterns, so comparisons are exact).

use rnnlab_core::random::{RandomState, RandomStateSnapshot};
use rnnlab_core::CoreError;
use serde_json::Value;

fn data() -> Value {
    let text = include_str!("data/numpy_random.json");
    serde_json::from_str(text).expect("numpy_random.json parses")
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("u64"))
        .collect()
}

fn i64s(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64().expect("i64"))
        .collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    u64s(v).into_iter().map(f64::from_bits).collect()
}

fn bits_of(values: &[f64]) -> Vec<u64> {
    values.iter().map(|x| x.to_bits()).collect()
}

/// Replay one numpy operation on `rs` and compare its output exactly. Returns how many
/// values were compared.
fn replay(rs: &mut RandomState, op: &Value, ctx: &str) -> usize {
    let kind = op["op"].as_str().expect("op name");
    match kind {
        "raw32" => {
            let want = u64s(&op["out"]);
            let got: Vec<u64> = (0..want.len()).map(|_| rs.next_u32() as u64).collect();
            assert_eq!(got, want, "{ctx}: raw32");
            want.len()
        }
        "rand" => {
            let want = u64s(&op["out_bits"]);
            assert_eq!(bits_of(&rs.rand(want.len())), want, "{ctx}: rand");
            want.len()
        }
        "randn" => {
            let shape: Vec<usize> = u64s(&op["shape"]).into_iter().map(|d| d as usize).collect();
            let want = u64s(&op["out_bits"]);
            let got = rs.randn(&shape);
            assert_eq!(got.shape(), shape.as_slice(), "{ctx}: randn shape");
            let flat: Vec<f64> = got.iter().copied().collect(); // C order
            assert_eq!(bits_of(&flat), want, "{ctx}: randn {shape:?}");
            want.len()
        }
        "choice_p" => {
            let p = f64s(&op["p_bits"]);
            let want = u64s(&op["out"]);
            let got: Vec<u64> = (0..want.len())
                .map(|_| rs.choice_p(&p).expect("valid p") as u64)
                .collect();
            assert_eq!(got, want, "{ctx}: choice_p p = {p:?}");
            want.len()
        }
        "choice" => {
            let n = op["n"].as_u64().expect("n") as usize;
            let want = u64s(&op["out"]);
            let got: Vec<u64> = (0..want.len())
                .map(|_| rs.choice(n).expect("n > 0") as u64)
                .collect();
            assert_eq!(got, want, "{ctx}: choice({n})");
            want.len()
        }
        "shuffle" => {
            let n = op["n"].as_u64().expect("n") as usize;
            let want = u64s(&op["out"]);
            let mut x: Vec<u64> = (0..n as u64).collect();
            rs.shuffle(&mut x);
            assert_eq!(x, want, "{ctx}: shuffle({n})");
            n
        }
        "randint" => {
            let low = op["low"].as_i64().expect("low");
            let high = op["high"].as_i64().expect("high");
            let want = i64s(&op["out"]);
            let got: Vec<i64> = (0..want.len())
                .map(|_| rs.randint(low, high).expect("low < high"))
                .collect();
            assert_eq!(got, want, "{ctx}: randint({low}, {high})");
            want.len()
        }
        "state" => {
            let want = RandomStateSnapshot {
                key: u64s(&op["key"]).into_iter().map(|k| k as u32).collect(),
                pos: op["pos"].as_u64().expect("pos") as usize,
                has_gauss: op["has_gauss"].as_bool().expect("has_gauss"),
                gauss: f64::from_bits(op["gauss_bits"].as_u64().expect("gauss_bits")),
            };
            let got = rs.snapshot();
            assert_eq!(got.key, want.key, "{ctx}: state key");
            assert_eq!(
                (got.pos, got.has_gauss, got.gauss.to_bits()),
                (want.pos, want.has_gauss, want.gauss.to_bits()),
                "{ctx}: state pos/has_gauss/gauss"
            );
            // A generator rebuilt from numpy's own state must be indistinguishable.
            let rebuilt = RandomState::from_snapshot(&want).expect("numpy state is valid");
            assert_eq!(rebuilt.snapshot(), got, "{ctx}: from_snapshot(numpy state)");
            1
        }
        other => panic!("{ctx}: unknown op {other}"),
    }
}

#[test]
fn streams_match_numpy() {
    let d = data();
    let mut compared = 0;
    for stream in d["streams"].as_array().expect("streams") {
        let name = stream["name"].as_str().expect("name");
        let seed = stream["seed"].as_u64().expect("seed") as u32;
        let mut rs = RandomState::new(seed);
        for (i, op) in stream["ops"].as_array().expect("ops").iter().enumerate() {
            compared += replay(&mut rs, op, &format!("stream '{name}' op {i}"));
        }
    }
    // Guard against a truncated data file (the current file holds 2911 values).
    assert!(compared > 2500, "compared only {compared} values");
}

#[test]
fn reseeding_matches_a_fresh_generator() {
    let d = data();
    for stream in d["streams"].as_array().expect("streams") {
        let seed = stream["seed"].as_u64().expect("seed") as u32;
        // seed() mid-stream, with a cached gaussian, behaves like np.random.seed(seed).
        let mut rs = RandomState::new(seed ^ 0x5555);
        rs.randn(&[3]);
        rs.seed(seed);
        let name = stream["name"].as_str().expect("name");
        for (i, op) in stream["ops"].as_array().expect("ops").iter().enumerate() {
            replay(&mut rs, op, &format!("reseeded stream '{name}' op {i}"));
        }
    }
}

#[test]
fn course_initialize_parameters() {
    // np.random.seed(1); Wax = randn(50,27)*0.01; Waa = randn(50,50)*0.01; Wya = randn(27,50)*0.01
    let d = data();
    let c = &d["course_init"];
    let mut rs = RandomState::new(c["seed"].as_u64().expect("seed") as u32);
    let sums = f64s(&c["sums_bits"]);
    for (k, name) in ["wax", "waa", "wya"].iter().enumerate() {
        let shape = u64s(&c[format!("{name}_shape")]);
        let w = rs.randn2(shape[0] as usize, shape[1] as usize) * 0.01; // (rows, cols)
        let flat: Vec<f64> = w.iter().copied().collect();
        assert_eq!(bits_of(&flat), u64s(&c[format!("{name}_bits")]), "{name}");
        // numpy sums pairwise, we sum sequentially: equal up to rounding.
        let sum: f64 = flat.iter().sum();
        assert!(
            (sum - sums[k]).abs() <= 1e-12 * sums[k].abs().max(1.0),
            "{name} sum {sum} vs {}",
            sums[k]
        );
    }
}

#[test]
fn course_shuffle_of_1536_examples() {
    // np.random.seed(0); np.random.shuffle(examples)  with 1536 dinosaur names
    let d = data();
    let c = &d["course_shuffle"];
    let n = c["n"].as_u64().expect("n") as usize;
    let mut rs = RandomState::new(0);
    rs.seed(c["seed"].as_u64().expect("seed") as u32);
    let mut names: Vec<String> = (0..n).map(|i| format!("name{i}")).collect();
    rs.shuffle(&mut names);
    let want: Vec<String> = u64s(&c["out"])
        .into_iter()
        .map(|i| format!("name{i}"))
        .collect();
    assert_eq!(names, want);
}

#[test]
fn probability_validation_agrees_with_numpy() {
    let d = data();
    for case in d["p_valid"].as_array().expect("p_valid") {
        let p = f64s(&case["p_bits"]);
        let valid = case["valid"].as_bool().expect("valid");
        let result = RandomState::new(0).choice_p(&p);
        assert_eq!(
            result.is_ok(),
            valid,
            "p = {p:?}: numpy valid = {valid}, got {result:?}"
        );
    }
}

#[test]
fn snapshot_round_trip_mid_stream() {
    let mut rs = RandomState::new(1);
    rs.rand(700); // past one regeneration of the key
    rs.randn(&[5]); // odd count: a gaussian is cached
    let snap = rs.snapshot();
    assert!(snap.has_gauss);
    assert_eq!(snap.key.len(), 624);

    let mut restored = RandomState::from_snapshot(&snap).expect("valid snapshot");
    let mut original = rs.clone();
    for _ in 0..3 {
        assert_eq!(
            original.standard_normal().to_bits(),
            restored.standard_normal().to_bits()
        );
        assert_eq!(
            original.random_sample().to_bits(),
            restored.random_sample().to_bits()
        );
        assert_eq!(
            original.choice_p(&[0.3, 0.7]).unwrap(),
            restored.choice_p(&[0.3, 0.7]).unwrap()
        );
        assert_eq!(
            original.randint(-(1 << 40), 1 << 40).unwrap(),
            restored.randint(-(1 << 40), 1 << 40).unwrap()
        );
    }
    let mut a: Vec<u32> = (0..1000).collect();
    let mut b = a.clone();
    original.shuffle(&mut a);
    restored.shuffle(&mut b);
    assert_eq!(a, b);
    assert_eq!(original.snapshot(), restored.snapshot());

    // Through JSON, as a checkpoint would carry it.
    let json = serde_json::to_string(&rs.snapshot()).unwrap();
    let back: RandomStateSnapshot = serde_json::from_str(&json).unwrap();
    let mut from_json = RandomState::from_snapshot(&back).unwrap();
    let mut again = rs.clone();
    assert_eq!(bits_of(&again.rand(10)), bits_of(&from_json.rand(10)));

    // A snapshot at pos == 624 (right after seeding) is valid too.
    let fresh = RandomState::new(9).snapshot();
    assert_eq!(fresh.pos, 624);
    assert_eq!(
        RandomState::from_snapshot(&fresh).unwrap().next_u32(),
        RandomState::new(9).next_u32()
    );
}

fn invalid_message(err: CoreError) -> String {
    assert_eq!(err.code(), "ERR_INVALID_ARG", "{err}");
    err.to_string()
}

#[test]
fn bad_snapshots_are_rejected() {
    let good = RandomState::new(3).snapshot();

    let mut short = good.clone();
    short.key.pop();
    let msg = invalid_message(RandomState::from_snapshot(&short).unwrap_err());
    assert!(
        msg.contains("key") && msg.contains("624") && msg.contains("623"),
        "{msg}"
    );

    let mut far = good.clone();
    far.pos = 625;
    let msg = invalid_message(RandomState::from_snapshot(&far).unwrap_err());
    assert!(msg.contains("pos") && msg.contains("625"), "{msg}");

    let mut zero = good.clone();
    zero.key.iter_mut().for_each(|w| *w = 0);
    let msg = invalid_message(RandomState::from_snapshot(&zero).unwrap_err());
    assert!(msg.contains("all-zero"), "{msg}");
    // only the top bit of key[0] counts: a state with just that bit set is valid
    zero.key[0] = 0x8000_0000;
    assert!(RandomState::from_snapshot(&zero).is_ok());

    let mut nan = good;
    nan.gauss = f64::NAN;
    assert_eq!(
        RandomState::from_snapshot(&nan).unwrap_err().code(),
        "ERR_NON_FINITE"
    );
}

#[test]
fn bad_probabilities_are_rejected() {
    let mut rs = RandomState::new(0);
    let before = rs.snapshot();

    let msg = invalid_message(rs.choice_p(&[]).unwrap_err());
    assert!(msg.contains("p") && msg.contains("empty"), "{msg}");

    let msg = invalid_message(rs.choice_p(&[0.5, -0.1, 0.6]).unwrap_err());
    assert!(
        msg.contains("non-negative") && msg.contains("p[1]") && msg.contains("-0.1"),
        "{msg}"
    );

    let err = rs.choice_p(&[0.5, f64::NAN, 0.5]).unwrap_err();
    assert_eq!(err.code(), "ERR_NON_FINITE");
    assert!(
        err.to_string().contains("p") && err.to_string().contains("index 1"),
        "{err}"
    );
    assert_eq!(
        rs.choice_p(&[f64::INFINITY, 0.0]).unwrap_err().code(),
        "ERR_NON_FINITE"
    );

    let msg = invalid_message(rs.choice_p(&[0.3, 0.3]).unwrap_err());
    assert!(msg.contains("sum to 1") && msg.contains("0.6"), "{msg}");
    let msg = invalid_message(rs.choice_p(&[0.0, 0.0]).unwrap_err());
    assert!(msg.contains("sum to 1"), "{msg}");

    // Rejected calls consume nothing from the stream.
    assert_eq!(rs.snapshot(), before);
}

#[test]
fn bad_ranges_are_rejected() {
    let mut rs = RandomState::new(0);
    let before = rs.snapshot();
    let msg = invalid_message(rs.randint(5, 5).unwrap_err());
    assert!(
        msg.contains("low < high") && msg.contains("low = 5") && msg.contains("high = 5"),
        "{msg}"
    );
    let msg = invalid_message(rs.randint(3, -2).unwrap_err());
    assert!(msg.contains("high = -2"), "{msg}");
    let msg = invalid_message(rs.choice(0).unwrap_err());
    assert!(msg.contains("n") && msg.contains('0'), "{msg}");
    assert_eq!(rs.snapshot(), before);
}

#[test]
fn randn_shapes() {
    let mut a = RandomState::new(4);
    let mut b = RandomState::new(4);
    // A 0-d randn (numpy's scalar randn()) is one standard_normal draw.
    let scalar = a.randn(&[]);
    assert_eq!(scalar.ndim(), 0);
    assert_eq!(
        scalar.iter().next().unwrap().to_bits(),
        b.standard_normal().to_bits()
    );
    // randn(&[r, c]) and randn2(r, c) are the same draws.
    let x = a.randn(&[2, 3]);
    let y = b.randn2(2, 3);
    assert_eq!(x.shape(), &[2, 3]);
    assert_eq!(
        bits_of(&x.iter().copied().collect::<Vec<_>>()),
        bits_of(&y.iter().copied().collect::<Vec<_>>())
    );
    // Zero-size shapes draw nothing.
    assert_eq!(a.randn(&[0, 4]).len(), 0);
    assert_eq!(a.snapshot(), b.snapshot());
}
