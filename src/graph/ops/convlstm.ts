// Owned by the convlstm family; see docs/ops/.
export {};
