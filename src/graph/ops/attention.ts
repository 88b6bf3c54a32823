// Owned by the attention family; see docs/ops/.
export {};
