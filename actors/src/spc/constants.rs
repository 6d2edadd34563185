//! The control-chart constants for subgroups of n = 2…25, to three decimals, as tabulated in
//! ASTM E2587 and Montgomery, *Introduction to Statistical Quality Control*, Appendix VI.

/// The constants of one subgroup size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constants {
    /// X̄ chart: limits x̿ ± A2·R̄.
    pub a2: f64,
    /// R chart: LCL = D3·R̄.
    pub d3: f64,
    /// R chart: UCL = D4·R̄.
    pub d4: f64,
    /// σ̂ = R̄ / d2.
    pub d2: f64,
}

/// `(a2, d3, d4, d2)` for n = 2…25 (index n − 2).
const TABLE: [(f64, f64, f64, f64); 24] = [
    (1.880, 0.000, 3.267, 1.128),
    (1.023, 0.000, 2.574, 1.693),
    (0.729, 0.000, 2.282, 2.059),
    (0.577, 0.000, 2.114, 2.326),
    (0.483, 0.000, 2.004, 2.534),
    (0.419, 0.076, 1.924, 2.704),
    (0.373, 0.136, 1.864, 2.847),
    (0.337, 0.184, 1.816, 2.970),
    (0.308, 0.223, 1.777, 3.078),
    (0.285, 0.256, 1.744, 3.173),
    (0.266, 0.283, 1.717, 3.258),
    (0.249, 0.307, 1.693, 3.336),
    (0.235, 0.328, 1.672, 3.407),
    (0.223, 0.347, 1.653, 3.472),
    (0.212, 0.363, 1.637, 3.532),
    (0.203, 0.378, 1.622, 3.588),
    (0.194, 0.391, 1.608, 3.640),
    (0.187, 0.403, 1.597, 3.689),
    (0.180, 0.415, 1.585, 3.735),
    (0.173, 0.425, 1.575, 3.778),
    (0.167, 0.434, 1.566, 3.819),
    (0.162, 0.443, 1.557, 3.858),
    (0.157, 0.451, 1.548, 3.895),
    (0.153, 0.459, 1.541, 3.931),
];

/// The largest subgroup the table covers.
pub const MAX_SUBGROUP: usize = 25;

/// Individuals and moving range (I-MR): limits x̄ ± 2.66·MR̄, MR UCL 3.267·MR̄, σ̂ = MR̄/1.128
/// (the n = 2 row, a moving range being the range of two values).
pub const IMR_E2: f64 = 2.66;

/// The constants for subgroups of `n` (2…25), `None` outside the table.
pub fn for_subgroup(n: usize) -> Option<Constants> {
    let (a2, d3, d4, d2) = *TABLE.get(n.checked_sub(2)?)?;
    Some(Constants { a2, d3, d4, d2 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_agrees_with_its_defining_relations() {
        // A2 = 3 / (d2·√n) and D3 = max(0, 1 − (D4 − 1)), to the table's rounding: a typo in
        // one entry shows up here.
        for n in 2..=MAX_SUBGROUP {
            let c = for_subgroup(n).unwrap();
            let a2 = 3.0 / (c.d2 * (n as f64).sqrt());
            assert!(
                (a2 - c.a2).abs() < 0.0016,
                "A2 of n = {n}: {a2} vs {}",
                c.a2
            );
            let d3 = (2.0 - c.d4).max(0.0);
            assert!(
                (d3 - c.d3).abs() < 0.0016,
                "D3 of n = {n}: {d3} vs {}",
                c.d3
            );
            assert!(c.d2 > 1.0 && c.d4 > 1.0);
        }
        assert_eq!(for_subgroup(1), None);
        assert_eq!(for_subgroup(26), None);
        assert_eq!(for_subgroup(5).unwrap().a2, 0.577);
        assert!((IMR_E2 - 3.0 / 1.128).abs() < 0.001);
    }
}
