//! The pure core against a published data set, and the properties any control chart keeps.

use super::chart::{Chart, ChartSpec, Rule};
use super::{SpcConfig, numeric};
use filmgate_testkit::textbook::{BASELINE, LSL, PISTON_RINGS, USL, published};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn spec(subgroup: usize, baseline: usize) -> ChartSpec {
    SpcConfig {
        subgroup,
        baseline,
        ..SpcConfig::default()
    }
    .spec("t")
    .unwrap()
}

/// Feeds `lots` (each a list of values) and returns the chart, every closed point and the
/// indexes each rule fired on.
fn run(spec: &ChartSpec, lots: &[Vec<f64>]) -> (Chart, BTreeMap<Rule, Vec<u64>>) {
    let mut chart = Chart::new(spec);
    let mut fired: BTreeMap<Rule, Vec<u64>> = BTreeMap::new();
    for (i, lot) in lots.iter().enumerate() {
        for &v in lot {
            let step = chart.observe(spec, &format!("lot-{i}"), v);
            for a in step.alarms {
                fired.entry(a.rule).or_default().extend(a.index);
            }
        }
    }
    for indexes in fired.values_mut() {
        indexes.sort_unstable();
    }
    (chart, fired)
}

#[test]
fn piston_rings_give_the_published_limits_capability_and_signals() {
    let spec = ChartSpec {
        lsl: Some(LSL),
        usl: Some(USL),
        ..spec(5, BASELINE)
    };
    let values: Vec<f64> = PISTON_RINGS.iter().flatten().copied().collect();
    let (chart, fired) = run(&spec, &[values]);
    let limits = chart.limits.clone().expect("frozen after 25 samples");
    let range = limits.range.clone().unwrap();
    let close = |got: f64, want: f64, unit: f64| {
        assert!((got - want).abs() <= unit, "{got} vs published {want}")
    };
    close(limits.center, published::CENTER, 0.0005);
    close(limits.ucl, published::UCL, 0.001);
    close(limits.lcl, published::LCL, 0.001);
    close(range.center.unwrap(), published::RANGE_CENTER, 0.0005);
    close(range.ucl, published::RANGE_UCL, 0.0005);
    close(range.lcl, published::RANGE_LCL, 0.0);
    close(limits.sigma, published::SIGMA, 0.0001);
    let (cp, _) = spec.capability(&limits);
    close(cp.unwrap(), published::CP, 0.015);
    assert_eq!(fired[&Rule::Beyond3Sigma], published::BEYOND_UCL);
    assert!(!fired.contains_key(&Rule::RangeBeyondUcl));
    // The run rules as README "Quality" defines them (not printed in the book).
    assert_eq!(
        fired[&Rule::TwoOfThreeBeyond2Sigma],
        published::TWO_OF_THREE
    );
    assert_eq!(
        fired[&Rule::FourOfFiveBeyond1Sigma],
        published::FOUR_OF_FIVE
    );
    assert!(!fired.contains_key(&Rule::EightOnOneSide));
    assert!(
        fired.values().flatten().all(|&i| i > BASELINE as u64),
        "phase I is in control: {fired:?}"
    );
    assert_eq!(chart.index, 40);
}

#[test]
fn a_subgroup_never_spans_two_lots_and_a_lots_rest_is_shown_unjudged() {
    let spec = spec(3, 2);
    let mut chart = Chart::new(&spec);
    let mut closed = Vec::new();
    for (lot, v) in [("a", 1.0), ("a", 2.0), ("a", 3.0), ("a", 4.0), ("b", 5.0)] {
        closed.extend(chart.observe(&spec, lot, v).closed);
    }
    let shown: Vec<_> = closed
        .iter()
        .map(|p| (p.index, p.lot.as_str(), p.n))
        .collect();
    assert_eq!(shown, [(Some(1), "a", 3), (None, "a", 1)]);
    assert_eq!(chart.open_point("b").map(|p| p.n), Some(1));
    assert_eq!(chart.open_point("a"), None);
}

#[test]
fn individuals_use_moving_ranges_within_a_lot() {
    let spec = spec(1, 4);
    let mut chart = Chart::new(&spec);
    let mut closed = Vec::new();
    for (lot, v) in [("a", 10.0), ("a", 12.0), ("b", 11.0), ("b", 10.0)] {
        closed.extend(chart.observe(&spec, lot, v).closed);
    }
    let ranges: Vec<_> = closed.iter().map(|p| p.range).collect();
    assert_eq!(ranges, [None, Some(2.0), None, Some(1.0)]);
    // The limits take all baseline − 1 = 3 moving ranges, across the lot change: 2, 1, 1.
    let limits = chart.limits.unwrap();
    let mr = 4.0 / 3.0;
    assert_eq!(limits.center, 10.75);
    assert!((limits.ucl - (10.75 + 2.66 * mr)).abs() < 1e-12);
    assert!((limits.range.unwrap().ucl - 3.267 * mr).abs() < 1e-12);
    assert!((limits.sigma - mr / 1.128).abs() < 1e-12);
}

#[test]
fn fixed_limits_judge_from_the_first_film_and_a_reset_starts_afresh() {
    let spec = SpcConfig {
        subgroup: 1,
        center: Some(0.0),
        ucl: Some(3.0),
        lcl: Some(-3.0),
        usl: Some(3.5),
        ..SpcConfig::default()
    }
    .spec("t")
    .unwrap();
    let mut chart = Chart::new(&spec);
    assert_eq!(chart.state(), "monitoring");
    let step = chart.observe(&spec, "a", 4.0);
    let rules: Vec<_> = step.alarms.iter().map(|a| (a.rule, a.index)).collect();
    assert_eq!(
        rules,
        [(Rule::OutOfSpec, None), (Rule::Beyond3Sigma, Some(1))]
    );
    assert_eq!(chart.limits.as_ref().unwrap().sigma, 1.0);
    chart.skip();
    assert_eq!(chart.reset(&spec), None);
    assert_eq!((chart.index, chart.window.len(), chart.skipped), (0, 0, 1));
    // The moving range within the lot goes on across the reset.
    assert_eq!(chart.observe(&spec, "a", 1.0).closed[0].range, Some(3.0));
}

#[test]
fn a_reset_shows_the_subgroup_it_cut_and_a_new_spec_keeps_the_indexes() {
    let spec = spec(3, 2);
    let mut chart = Chart::new(&spec);
    for v in [1.0, 2.0, 3.0, 4.0] {
        chart.observe(&spec, "a", v);
    }
    let cut = chart.clone().reset(&spec).expect("the open subgroup");
    assert_eq!((cut.index, cut.n, cut.mean), (None, 1, 4.0));
    let (chart, cut) = chart.respecified(&self::spec(2, 2));
    assert_eq!(cut.map(|p| p.n), Some(1));
    assert_eq!((chart.index, chart.limits.is_none()), (1, true));
}

#[test]
fn config_mistakes_name_their_key() {
    let key = |cfg: SpcConfig| cfg.spec("serial[0].spc.t").unwrap_err().key;
    let base = SpcConfig::default();
    assert_eq!(
        key(SpcConfig {
            subgroup: 0,
            ..base.clone()
        }),
        "serial[0].spc.t.subgroup"
    );
    assert_eq!(
        key(SpcConfig {
            subgroup: 26,
            ..base.clone()
        }),
        "serial[0].spc.t.subgroup"
    );
    assert_eq!(
        key(SpcConfig {
            baseline: 0,
            ..base.clone()
        }),
        "serial[0].spc.t.baseline"
    );
    assert_eq!(
        key(SpcConfig {
            subgroup: 1,
            baseline: 1,
            ..base.clone()
        }),
        "serial[0].spc.t.baseline"
    );
    assert_eq!(
        key(SpcConfig {
            lsl: Some(2.0),
            usl: Some(1.0),
            ..base.clone()
        }),
        "serial[0].spc.t.usl"
    );
    assert_eq!(
        key(SpcConfig {
            ucl: Some(1.0),
            ..base.clone()
        }),
        "serial[0].spc.t.center"
    );
    assert_eq!(
        key(SpcConfig {
            center: Some(1.0),
            ucl: Some(0.0),
            lcl: Some(-1.0),
            ..base.clone()
        }),
        "serial[0].spc.t.center"
    );
    assert_eq!(
        key(SpcConfig {
            range_ucl: Some(1.0),
            ..base.clone()
        }),
        "serial[0].spc.t.range_ucl"
    );
    assert_eq!(
        key(SpcConfig {
            lsl: Some(f64::NAN),
            ..base
        }),
        "serial[0].spc.t.lsl"
    );
}

#[test]
fn only_finite_numbers_are_values() {
    use serde_json::json;
    assert_eq!(numeric(Some(&json!(25.1))), Some(25.1));
    assert_eq!(numeric(Some(&json!(" 25.1 "))), Some(25.1));
    for skipped in [
        json!("NaN"),
        json!("inf"),
        json!(1e200),
        json!("x"),
        json!(null),
        json!([1]),
    ] {
        assert_eq!(numeric(Some(&skipped)), None, "{skipped}");
    }
    assert_eq!(numeric(None), None);
}

fn finite() -> impl Strategy<Value = f64> {
    (-1_000_000i64..1_000_000).prop_map(|v| v as f64 / 1000.0)
}

proptest! {
    #[test]
    fn limits_do_not_depend_on_the_order_of_the_baselines_subgroups(
        n in 2usize..6,
        groups in prop::collection::vec(prop::collection::vec(finite(), 6), 2..12),
        shuffle in any::<prop::sample::Index>(),
    ) {
        // Each subgroup in its own lot, so the subgroups are the same whatever their order.
        // (Individuals are left out: a moving range is made by the order.)
        let groups: Vec<Vec<f64>> = groups.into_iter().map(|g| g[..n].to_vec()).collect();
        let spec = spec(n, groups.len());
        let mut shuffled = groups.clone();
        let k = shuffle.index(shuffled.len());
        shuffled.rotate_left(k);
        shuffled.reverse();
        let (a, _) = run(&spec, &groups);
        let (b, _) = run(&spec, &shuffled);
        prop_assert_eq!(a.limits, b.limits);
    }

    #[test]
    fn shifting_every_value_shifts_center_and_limits(
        n in 1usize..6,
        values in prop::collection::vec(finite(), 40),
        c in finite(),
    ) {
        let spec = spec(n, 40 / n / 2);
        let shifted: Vec<f64> = values.iter().map(|v| v + c).collect();
        let (a, _) = run(&spec, std::slice::from_ref(&values));
        let (b, _) = run(&spec, &[shifted]);
        let (a, b) = (a.limits.unwrap(), b.limits.unwrap());
        let tol = 1e-6 * (1.0 + c.abs() + a.center.abs());
        prop_assert!((b.center - (a.center + c)).abs() < tol);
        prop_assert!((b.ucl - (a.ucl + c)).abs() < tol);
        prop_assert!((b.lcl - (a.lcl + c)).abs() < tol);
        prop_assert!((b.sigma - a.sigma).abs() < tol);
    }

    #[test]
    fn no_rule_fires_on_a_constant_series(
        n in 1usize..8,
        baseline in 2usize..10,
        value in finite(),
        lots in prop::collection::vec(1usize..40, 1..6),
    ) {
        let spec = spec(n, baseline);
        let lots: Vec<Vec<f64>> = lots.iter().map(|&len| vec![value; len]).collect();
        let (_, fired) = run(&spec, &lots);
        prop_assert!(fired.is_empty(), "{:?}", fired);
    }

    #[test]
    fn every_complete_subgroup_gets_the_next_index_and_holds_one_lot(
        n in 1usize..6,
        lots in prop::collection::vec(prop::collection::vec(finite(), 0..15), 1..6),
    ) {
        let spec = spec(n, 3);
        let mut chart = Chart::new(&spec);
        let mut indexes = Vec::new();
        for (i, lot) in lots.iter().enumerate() {
            for &v in lot {
                for p in chart.observe(&spec, &format!("{i}"), v).closed {
                    prop_assert!(p.n <= n);
                    prop_assert_eq!(p.index.is_some(), p.n == n);
                    indexes.extend(p.index);
                }
            }
        }
        let expected: Vec<u64> = (1..=indexes.len() as u64).collect();
        prop_assert_eq!(indexes, expected);
    }
}
