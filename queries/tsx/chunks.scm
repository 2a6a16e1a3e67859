; Semantic chunks for TSX: the TypeScript chunks, over the TSX grammar.
; inherits: typescript
