//! Vicinity's spatial functions (H3 cells, covers, distances, snapping).
//!
//! The foundation only needs the storage resolution shared by the store; the cover and distance
//! functions arrive with venue search.

/// The H3 resolution at which every venue and presence cell is stored (~15 000 m² per cell).
pub const STORAGE_RESOLUTION: u8 = 10;
