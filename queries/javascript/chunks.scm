; Semantic chunks for JavaScript and JSX.
; Captures: see queries/rust/chunks.scm.

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

(class_declaration name: (identifier) @name body: (class_body) @body) @chunk.class

(method_definition name: (_) @name body: (statement_block) @body) @chunk.method
(field_definition
  property: (_) @name
  value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)]) @chunk.method
