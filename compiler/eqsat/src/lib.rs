//! The e-graph stage: kernel-selection language, rule files, cost model, extraction (egg)
