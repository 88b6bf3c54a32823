// Owned by the reduce family; see docs/ops/.
export {};
