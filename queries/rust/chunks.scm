; Semantic chunks for Rust.
;
; Captures (shared by every language):
;   @chunk.<kind>  the node that is the chunk; <kind> is one of function, method, impl, trait,
;                  struct, enum, union, class, interface, type, module, macro
;   @name          its name (an impl is named "Trait for Type" from @name.trait and @name)
;   @body          the part after the signature; the signature is the chunk up to @body
;
; A function whose parent chunk is an impl, trait, class or interface becomes a method.
; Doc comments and attributes directly above a chunk are attached by the chunker, and
; only containers (impl, trait, class, interface, module) hold child chunks.

(function_item name: (identifier) @name body: (block) @body) @chunk.function
(function_signature_item name: (identifier) @name) @chunk.function

(impl_item
  trait: (_)? @name.trait
  type: (_) @name
  body: (declaration_list) @body) @chunk.impl

(trait_item name: (type_identifier) @name body: (declaration_list) @body) @chunk.trait
(struct_item name: (type_identifier) @name body: (_)? @body) @chunk.struct
(enum_item name: (type_identifier) @name body: (enum_variant_list) @body) @chunk.enum
(union_item name: (type_identifier) @name body: (field_declaration_list) @body) @chunk.union
(type_item name: (type_identifier) @name) @chunk.type
(mod_item name: (identifier) @name body: (declaration_list) @body) @chunk.module
(macro_definition name: (identifier) @name) @chunk.macro
