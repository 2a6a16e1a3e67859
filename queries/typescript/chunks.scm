; Semantic chunks for TypeScript (also inherited by TSX).
; Captures: see queries/rust/chunks.scm. Declarations wrapped in `export` or `declare`
; take the wrapper into the chunk.

(function_declaration name: (identifier) @name body: (statement_block) @body) @chunk.function
(generator_function_declaration name: (identifier) @name body: (statement_block) @body) @chunk.function

(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function body: (_) @body)
            (function_expression body: (_) @body)
            (generator_function body: (_) @body)])) @chunk.function

(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function body: (_) @body)
            (function_expression body: (_) @body)
            (generator_function body: (_) @body)])) @chunk.function

(class_declaration name: (type_identifier) @name body: (class_body) @body) @chunk.class
(abstract_class_declaration name: (type_identifier) @name body: (class_body) @body) @chunk.class

(method_definition name: (_) @name body: (statement_block) @body) @chunk.method
(abstract_method_signature name: (_) @name) @chunk.method
(public_field_definition
  name: (_) @name
  value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)]) @chunk.method

(interface_declaration name: (type_identifier) @name body: (interface_body) @body) @chunk.interface
(type_alias_declaration name: (type_identifier) @name) @chunk.type
(enum_declaration name: (identifier) @name body: (enum_body) @body) @chunk.enum
(internal_module name: (_) @name body: (statement_block) @body) @chunk.module
(module name: (_) @name body: (statement_block) @body) @chunk.module
