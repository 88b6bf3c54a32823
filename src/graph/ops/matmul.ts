// Owned by the matmul family; see docs/ops/.
export {};
