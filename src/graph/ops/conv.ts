// Owned by the conv family; see docs/ops/.
export {};
