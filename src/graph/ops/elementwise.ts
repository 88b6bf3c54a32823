// Owned by the elementwise family; see docs/ops/.
export {};
