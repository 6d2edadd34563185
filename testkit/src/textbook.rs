//! A published control-chart data set with its published results, to test SPC against
//! numbers nobody here computed.
//!
//! Source: D. C. Montgomery, *Introduction to Statistical Quality Control*, 6th ed., Wiley
//! 2009, §6.2 (x̄ and R charts), the piston-ring example: the inside diameter (mm) of forged
//! automobile-engine piston rings, 25 preliminary samples of 5 (phase I) and 15 more taken
//! after the limits were set (phase II, samples 26–40). The same data ship as the
//! `pistonrings` data set of the R packages qcc and IQCC. Sample 21 is as printed in the book
//! (73.982, 74.001, 74.015, 74.005, 73.996): with it ΣR = 0.581, as the book states.

/// The 40 samples of 5, in order.
pub const PISTON_RINGS: [[f64; 5]; 40] = [
    [74.030, 74.002, 74.019, 73.992, 74.008],
    [73.995, 73.992, 74.001, 74.011, 74.004],
    [73.988, 74.024, 74.021, 74.005, 74.002],
    [74.002, 73.996, 73.993, 74.015, 74.009],
    [73.992, 74.007, 74.015, 73.989, 74.014],
    [74.009, 73.994, 73.997, 73.985, 73.993],
    [73.995, 74.006, 73.994, 74.000, 74.005],
    [73.985, 74.003, 73.993, 74.015, 73.988],
    [74.008, 73.995, 74.009, 74.005, 74.004],
    [73.998, 74.000, 73.990, 74.007, 73.995],
    [73.994, 73.998, 73.994, 73.995, 73.990],
    [74.004, 74.000, 74.007, 74.000, 73.996],
    [73.983, 74.002, 73.998, 73.997, 74.012],
    [74.006, 73.967, 73.994, 74.000, 73.984],
    [74.012, 74.014, 73.998, 73.999, 74.007],
    [74.000, 73.984, 74.005, 73.998, 73.996],
    [73.994, 74.012, 73.986, 74.005, 74.007],
    [74.006, 74.010, 74.018, 74.003, 74.000],
    [73.984, 74.002, 74.003, 74.005, 73.997],
    [74.000, 74.010, 74.013, 74.020, 74.003],
    [73.982, 74.001, 74.015, 74.005, 73.996],
    [74.004, 73.999, 73.990, 74.006, 74.009],
    [74.010, 73.989, 73.990, 74.009, 74.014],
    [74.015, 74.008, 73.993, 74.000, 74.010],
    [73.982, 73.984, 73.995, 74.017, 74.013],
    [74.012, 74.015, 74.030, 73.986, 74.000],
    [73.995, 74.010, 73.990, 74.015, 74.001],
    [73.987, 73.999, 73.985, 74.000, 73.990],
    [74.008, 74.010, 74.003, 73.991, 74.006],
    [74.003, 74.000, 74.001, 73.986, 73.997],
    [73.994, 74.003, 74.015, 74.020, 74.004],
    [74.008, 74.002, 74.018, 73.995, 74.005],
    [74.001, 74.004, 73.990, 73.996, 73.998],
    [74.015, 74.000, 74.016, 74.025, 74.000],
    [74.030, 74.005, 74.000, 74.016, 74.012],
    [74.001, 73.990, 73.995, 74.010, 74.024],
    [74.015, 74.020, 74.024, 74.005, 74.019],
    [74.035, 74.010, 74.012, 74.015, 74.026],
    [74.017, 74.013, 74.036, 74.025, 74.026],
    [74.010, 74.005, 74.029, 74.000, 74.020],
];

/// Phase I samples that set the limits.
pub const BASELINE: usize = 25;
/// Specification limits of the example: 74.000 ± 0.05 mm.
pub const LSL: f64 = 73.95;
pub const USL: f64 = 74.05;

/// The book's figures, to the three decimals it prints (it rounds R̄ to 0.023 before using
/// it, so a limit from the unrounded R̄ = 0.02324 may differ from these in the third
/// decimal: compare within one unit of it).
pub mod published {
    /// x̿ (center line of the x̄ chart).
    pub const CENTER: f64 = 74.001;
    pub const UCL: f64 = 74.014;
    pub const LCL: f64 = 73.988;
    /// R̄ (center line of the R chart).
    pub const RANGE_CENTER: f64 = 0.023;
    pub const RANGE_UCL: f64 = 0.049;
    pub const RANGE_LCL: f64 = 0.0;
    /// σ̂ = R̄/d2 = 0.023/2.326.
    pub const SIGMA: f64 = 0.0099;
    /// PCR = Cp = (USL − LSL)/6σ̂ (the book's 1.68 comes from the rounded σ̂ = 0.0099).
    pub const CP: f64 = 1.68;
    /// Phase II samples whose x̄ plots above the UCL (the continuation chart of the example).
    pub const BEYOND_UCL: [u64; 3] = [37, 38, 39];
    /// Not printed in the book: what the run rules (README "Quality") flag on the 40 samples (the same
    /// by an independent count).
    pub const TWO_OF_THREE: [u64; 5] = [35, 37, 38, 39, 40];
    pub const FOUR_OF_FIVE: [u64; 3] = [38, 39, 40];
}
