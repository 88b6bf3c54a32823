// Owned by the upsample family; see docs/ops/.
export {};
