// Owned by the pool family; see docs/ops/.
export {};
