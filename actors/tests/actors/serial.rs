//! Tests of the serial stage.
