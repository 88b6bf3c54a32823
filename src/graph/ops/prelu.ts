// Owned by the prelu family; see docs/ops/.
export {};
