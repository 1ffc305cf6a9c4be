"""The instructor's side of the CGAN lab: nbgrader configuration, the solution notebook's
code for benchmarks and calibration, and the catalogue of correct and buggy variants."""
