//! Tests of the poster stage.
