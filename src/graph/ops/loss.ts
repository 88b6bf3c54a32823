// Owned by the loss family; see docs/ops/.
export {};
