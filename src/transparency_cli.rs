//! The command line of DESIGN.md §9 (filled in below).
