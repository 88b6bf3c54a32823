// Owned by the norm family; see docs/ops/.
export {};
