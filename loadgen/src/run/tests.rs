//! Adding the poll loops' samples up: the report keeps the first ones and counts the
//! rest, so a summary can say how many it left out.

use super::*;

fn samples(prefix: &str, n: usize, omitted: u64) -> Samples {
    Samples {
        kept: (0..n).map(|i| format!("{prefix}{i}")).collect(),
        omitted,
    }
}

#[test]
fn keep_samples_counts_what_it_leaves_out() {
    let mut kept = Vec::new();
    assert_eq!(keep_samples(&mut kept, &samples("a", 30, 4)), 4);
    assert_eq!(kept.len(), 30);
    assert_eq!(keep_samples(&mut kept, &samples("b", 30, 1)), 1 + 10);
    assert_eq!(kept.len(), SAMPLES_MAX);
    assert_eq!((kept[0].as_str(), kept[49].as_str()), ("a0", "b19"));
    assert_eq!(keep_samples(&mut kept, &samples("c", 2, 0)), 2);
}
