//! Lowering of an evalscript's JavaScript AST (parsed by boa's own parser) to a small typed
//! IR that `codegen` turns into WebAssembly.
//!
//! Every value is a Number (f64) or a Boolean (i32), known statically; anything whose
//! type or semantics cannot be pinned down here is rejected with a reason so the script
//! runs in boa instead. Helper functions are inlined at their call sites (no recursion),
//! top-level constants become locals initialised once per `run` call.
//!
//! Beyond scalars, lowering knows (without new IR nodes):
//! - fixed-size arrays (`Val::Array`): array literals with spreads, `var c = [...]` held
//!   as one local per element, `c[k]` with a literal `k`, `c.length`, `...c` in returns,
//!   array literals and `Math.max/min/hypot`, and `c.map(function (v, i) {...})`;
//! - compile-time tables and visualizers (`CVal`): top-level `const`/unassigned `var`
//!   Number arrays and `new HighlightCompressVisualizer(...)` (also `...Single`,
//!   `DefaultVisualizer`, `ColorRampVisualizer`, `ColorMapVisualizer` and the
//!   `create*` presets), folded only when `Escapes` proves nothing can change them;
//! - the prelude helpers `index`, `colorBlend`/`valueInterpolate`, `valueMap`,
//!   `colorMap`, `combine` (arrays) and the visualizers' `process`/`processList`,
//!   expanded to the exact f64 operations of prelude.js in the same order;
//! - `switch` with constant cases (strict equality, fall-through, `break`).

mod consts;
mod intrinsics;
mod ir;

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use boa_engine::ast::declaration::{Binding, Declaration, LexicalDeclaration, Variable};
use boa_engine::ast::expression::access::{PropertyAccess, PropertyAccessField};
use boa_engine::ast::expression::literal::{LiteralKind, PropertyDefinition};
use boa_engine::ast::expression::operator::assign::{AssignOp, AssignTarget};
use boa_engine::ast::expression::operator::binary::{
    ArithmeticOp, BinaryOp, LogicalOp, RelationalOp,
};
use boa_engine::ast::expression::operator::unary::UnaryOp;
use boa_engine::ast::expression::operator::update::{UpdateOp, UpdateTarget};
use boa_engine::ast::expression::Expression;
use boa_engine::ast::function::{FormalParameterList, FunctionBody, FunctionDeclaration};
use boa_engine::ast::property::PropertyName;
use boa_engine::ast::scope::Scope;
use boa_engine::ast::statement::iteration::ForLoopInitializer;
use boa_engine::ast::statement::Statement;
use boa_engine::ast::visitor::{VisitWith, Visitor};
use boa_engine::ast::StatementListItem;
use boa_engine::interner::{Interner, Sym};
use boa_engine::parser::{Parser, Source};

use super::WasmError;
use consts::*;
use intrinsics::*;
pub(crate) use ir::*;

/// How deep helper functions may be inlined into each other.
const MAX_INLINE_DEPTH: usize = 8;
/// Upper bound on IR nodes, so a pathological script cannot make compilation explode.
const MAX_NODES: usize = 200_000;

#[derive(Debug, Clone)]
enum Bind<'a> {
    Local {
        local: u32,
        ty: Ty,
        constant: bool,
        global: bool,
    },
    /// A top-level binding that could not be compiled: referencing it is unsupported.
    Unusable(String),
    /// A compile-time table or visualizer (never mutated: see `Escapes`).
    Const(CVal),
    /// A fixed-size array held as one Number local per element.
    Array(Vec<u32>),
    /// `evaluatePixel`'s `samples` object (or an alias of it): its properties are the
    /// input bands.
    Samples,
    /// A function declared inside a function body, or a function expression held in a
    /// never-assigned variable: inlined at each call. `def` is where it is defined (the
    /// frame and the innermost scope then), whose bindings it closes over; `None` at the
    /// top level.
    Func {
        params: &'a FormalParameterList,
        body: &'a FunctionBody,
        def: Option<(usize, usize)>,
    },
}

/// A lowered argument of an inlined call: a value, or a binding passed through whole
/// (the samples object, a fixed-size array, a table, a constant string, a function).
enum Arg<'a> {
    Value(Expr),
    Bound(Bind<'a>),
}

fn unsupported(reason: impl Into<String>) -> WasmError {
    WasmError::Unsupported(reason.into())
}

struct FnFrame {
    /// Index into `scopes` of this function's var scope.
    var_scope: usize,
    /// For a nested function, where it was defined (frame, innermost scope): names not
    /// bound in this function resolve in that frame's scopes up to that one, then along
    /// that frame's own chain.
    closure: Option<(usize, usize)>,
    /// Return types seen so far (inlined functions).
    ret_ty: Option<Ty>,
    /// For an inlined function that returns fixed-size arrays: the locals receiving the
    /// elements (every `return` must give an array of this length).
    ret_array: Option<Vec<u32>>,
    is_pixel: bool,
    /// Enclosing breakable statements, innermost last: `true` for a loop, `false` for a
    /// `switch` (which `continue` must not target).
    breakables: Vec<bool>,
    /// `var` locals, set to undefined (NaN / false) on entry as JS hoisting does, so a
    /// `var` whose declaration was skipped never shows a previous pixel's value.
    hoisted: Vec<(u32, Ty)>,
}

struct Lowerer<'a> {
    interner: &'a Interner,
    input_bands: &'a [String],
    outputs: &'a [(String, usize)],
    functions: HashMap<Sym, &'a FunctionDeclaration>,
    assigned: HashSet<Sym>,
    scopes: Vec<HashMap<Sym, Bind<'a>>>,
    frames: Vec<FnFrame>,
    inline_stack: Vec<Sym>,
    locals: Vec<Ty>,
    bands: Vec<(usize, u32)>,
    nodes: usize,
    /// Names used in ways that may alias or mutate a table (see `Escapes`).
    escapes: Escapes,
    /// Compile-time values of Number variables that are never assigned (top-level, or
    /// declared where they are always initialised), by IR local.
    global_nums: HashMap<u32, f64>,
}

/// Every identifier assigned (`=`, `op=`, `++`, `--`) anywhere in the script, functions
/// included: a global assigned by `setup()` or a helper is not a compile-time constant.
/// A name declared with `var` more than once counts as assigned too (a later `var x = v`
/// is an assignment), so its first value is never folded. The second set holds the
/// `var` names seen.
#[derive(Default)]
struct AssignedNames(HashSet<Sym>, HashSet<Sym>);

impl<'ast> Visitor<'ast> for AssignedNames {
    type BreakTy = ();

    fn visit_var_declaration(
        &mut self,
        node: &'ast boa_engine::ast::declaration::VarDeclaration,
    ) -> ControlFlow<()> {
        for var in node.0.as_ref() {
            if let Binding::Identifier(ident) = var.binding() {
                if !self.1.insert(ident.sym()) {
                    self.0.insert(ident.sym());
                }
            }
        }
        node.visit_with(self)
    }

    fn visit_assign(
        &mut self,
        node: &'ast boa_engine::ast::expression::operator::Assign,
    ) -> ControlFlow<()> {
        if let AssignTarget::Identifier(ident) = node.lhs() {
            self.0.insert(ident.sym());
        }
        node.visit_with(self)
    }

    fn visit_update(
        &mut self,
        node: &'ast boa_engine::ast::expression::operator::Update,
    ) -> ControlFlow<()> {
        if let UpdateTarget::Identifier(ident) = node.target() {
            self.0.insert(ident.sym());
        }
        node.visit_with(self)
    }
}

/// Names of every function declared anywhere (nested ones shadow helpers too).
#[derive(Default)]
struct DeclaredFunctions(HashSet<Sym>);

impl<'ast> Visitor<'ast> for DeclaredFunctions {
    type BreakTy = ();

    fn visit_function_declaration(&mut self, node: &'ast FunctionDeclaration) -> ControlFlow<()> {
        self.0.insert(node.name().sym());
        node.visit_with(self)
    }
}

/// Names of the built-ins the compiler gives a fixed meaning to.
const BUILTIN_NAMES: [&str; 6] = ["Math", "Number", "isNaN", "isFinite", "NaN", "Infinity"];

/// Which function of the source is evaluated per pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// V3: `evaluatePixel(samples, ...)`.
    EvaluatePixel,
    /// A V1 body wrapped as `function __tessera_v1_body(B04, ...) { body }` (see
    /// `evalscript::v1`): the parameters are the input bands, in order.
    V1Body,
}

/// Parses `source` and lowers its `evaluatePixel`.
///
/// `input_bands` are the band names of `setup().input` in order; `outputs` the id and
/// band count of each output, in setup order.
pub(crate) fn lower(
    source: &str,
    input_bands: &[String],
    outputs: &[(String, usize)],
    entry: Entry,
) -> Result<Lowered, WasmError> {
    let mut interner = Interner::default();
    let script = Parser::new(Source::from_bytes(source))
        .parse_script(&Scope::new_global(), &mut interner)
        .map_err(|err| unsupported(format!("parse error: {err}")))?;
    let items = script.statements().statements();
    let mut assigned = AssignedNames::default();
    let _ = script.visit_with(&mut assigned);
    let assigned = assigned.0;
    for name in BUILTIN_NAMES.iter().chain(&["evaluatePixel"]) {
        if interner
            .get(*name)
            .is_some_and(|sym| assigned.contains(&sym))
        {
            return Err(unsupported(format!("the script assigns '{name}'")));
        }
    }

    let mut declared = DeclaredFunctions::default();
    let _ = script.visit_with(&mut declared);
    let user_fns = declared.0;
    let mut escapes = Escapes::new(&interner, user_fns);
    let _ = script.visit_with(&mut escapes);
    escapes.finish();
    for name in ["Math", "Number"] {
        if interner
            .get(name)
            .is_some_and(|sym| escapes.escaped.contains(&sym))
        {
            return Err(unsupported(format!(
                "the script uses '{name}' as a value or changes it"
            )));
        }
    }
    let mut functions = HashMap::new();
    for item in items {
        if let StatementListItem::Declaration(decl) = item {
            if let Declaration::FunctionDeclaration(f) = decl.as_ref() {
                functions.insert(f.name().sym(), f);
            }
        }
    }
    let mut lw = Lowerer {
        interner: &interner,
        input_bands,
        outputs,
        functions,
        assigned,
        scopes: vec![HashMap::new()],
        frames: Vec::new(),
        inline_stack: Vec::new(),
        locals: Vec::new(),
        bands: Vec::new(),
        nodes: 0,
        escapes,
        global_nums: HashMap::new(),
    };
    let (name, v1) = match entry {
        Entry::EvaluatePixel => ("evaluatePixel", false),
        Entry::V1Body => (crate::evalscript::v1::V1_FUNCTION, true),
    };
    let evaluate_pixel = lw.sym(name);
    let prologue = lw.lower_top_level(items)?;
    let entry = evaluate_pixel.and_then(|s| match lw.functions.get(&s) {
        Some(f) => Some((f.parameters(), f.body())),
        // `const evaluatePixel = (samples) => ...`, never reassigned.
        None => match lw.scopes[0].get(&s) {
            Some(Bind::Func { params, body, .. }) => Some((*params, *body)),
            _ => None,
        },
    });
    let Some((params, function_body)) = entry else {
        return Err(unsupported(
            "evaluatePixel is not a top-level function declaration or constant function",
        ));
    };
    let body = lw.lower_pixel_function(params, function_body, v1)?;
    Ok(Lowered {
        locals: lw.locals,
        bands: lw.bands,
        prologue,
        body,
    })
}

impl<'a> Lowerer<'a> {
    fn sym(&self, name: &str) -> Option<Sym> {
        self.interner.get(name)
    }

    fn name(&self, sym: Sym) -> String {
        self.interner.resolve_expect(sym).to_string()
    }

    fn new_local(&mut self, ty: Ty) -> u32 {
        self.locals.push(ty);
        (self.locals.len() - 1) as u32
    }

    fn count(&mut self) -> Result<(), WasmError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(unsupported("script too large to compile"));
        }
        Ok(())
    }

    /// Top level: function declarations (collected already) and constant declarations.
    fn lower_top_level(&mut self, items: &'a [StatementListItem]) -> Result<Vec<Stmt>, WasmError> {
        let mut prologue = Vec::new();
        for item in items {
            match item {
                StatementListItem::Declaration(decl) => match decl.as_ref() {
                    Declaration::FunctionDeclaration(_) => {}
                    Declaration::Lexical(lexical) => {
                        let constant = lexical.is_const();
                        for var in lexical.variable_list().as_ref() {
                            self.top_level_variable(var, constant, &mut prologue)?;
                        }
                    }
                    _ => {
                        return Err(unsupported(
                            "top-level declaration other than a function or a variable",
                        ))
                    }
                },
                StatementListItem::Statement(stmt) => match stmt.as_ref() {
                    Statement::Var(var) => {
                        for var in var.0.as_ref() {
                            self.top_level_variable(var, false, &mut prologue)?;
                        }
                    }
                    Statement::Empty => {}
                    _ => return Err(unsupported(
                        "top-level statement other than a declaration (it may change global state)",
                    )),
                },
            }
        }
        Ok(prologue)
    }

    fn top_level_variable(
        &mut self,
        var: &'a Variable,
        constant: bool,
        prologue: &mut Vec<Stmt>,
    ) -> Result<(), WasmError> {
        let Binding::Identifier(ident) = var.binding() else {
            return Err(unsupported("top-level destructuring declaration"));
        };
        let sym = ident.sym();
        if !constant && self.assigned.contains(&sym) {
            let reason = format!(
                "global '{}' is assigned somewhere in the script",
                self.name(sym)
            );
            self.scopes[0].insert(sym, Bind::Unusable(reason));
            return Ok(());
        }
        let function = match var.init().map(strip_parens) {
            Some(Expression::FunctionExpression(f)) => Some((f.parameters(), f.body())),
            Some(Expression::ArrowFunction(f)) => Some((f.parameters(), f.body())),
            _ => None,
        };
        if let Some((params, body)) = function {
            // A const can still be assigned (a TypeError), which AssignedNames sees.
            let binding = if self.assigned.contains(&sym) {
                Bind::Unusable(format!("function '{}' is reassigned", self.name(sym)))
            } else {
                Bind::Func {
                    params,
                    body,
                    def: None,
                }
            };
            self.scopes[0].insert(sym, binding);
            return Ok(());
        }
        if let Some(init) = var.init() {
            match self.const_eval(init) {
                Some(CVal::Num(v)) => {
                    let local = self.new_local(Ty::Num);
                    prologue.push(Stmt::Expr(Expr::Set(
                        local,
                        Ty::Num,
                        Box::new(Expr::Num(v)),
                    )));
                    self.global_nums.insert(local, v);
                    self.scopes[0].insert(
                        sym,
                        Bind::Local {
                            local,
                            ty: Ty::Num,
                            constant,
                            global: true,
                        },
                    );
                    return Ok(());
                }
                Some(value) => {
                    let binding = if self.escapes.whole_only(sym, &value) {
                        Bind::Const(value)
                    } else {
                        Bind::Unusable(format!(
                            "global table '{}' is used in a way that may change it",
                            self.name(sym)
                        ))
                    };
                    self.scopes[0].insert(sym, binding);
                    return Ok(());
                }
                None => {}
            }
        }
        let lowered = match var.init() {
            None => Ok(Expr::Num(f64::NAN)),
            Some(init) => {
                self.frames.push(FnFrame {
                    var_scope: 0,
                    closure: None,
                    ret_ty: None,
                    ret_array: None,
                    is_pixel: false,
                    breakables: Vec::new(),
                    hoisted: Vec::new(),
                });
                let result = self.expr(init);
                self.frames.pop();
                result
            }
        };
        let binding = match lowered {
            Ok(expr) => {
                let ty = expr.ty();
                let local = self.new_local(ty);
                prologue.push(Stmt::Expr(Expr::Set(local, ty, Box::new(expr))));
                Bind::Local {
                    local,
                    ty,
                    constant,
                    global: true,
                }
            }
            Err(WasmError::Unsupported(reason)) => Bind::Unusable(format!(
                "uses global '{}', whose initialiser is not compilable: {reason}",
                self.name(sym)
            )),
            Err(other) => return Err(other),
        };
        self.scopes[0].insert(sym, binding);
        Ok(())
    }

    /// The IR local holding input band `band` at the current pixel.
    fn band_local(&mut self, band: usize) -> u32 {
        match self.bands.iter().find(|(b, _)| *b == band) {
            Some((_, local)) => *local,
            None => {
                let local = self.new_local(Ty::Num);
                self.bands.push((band, local));
                local
            }
        }
    }

    /// The entry function: `evaluatePixel(samples, ...)` (V3), or a V1 body's wrapper
    /// whose parameters are its band globals (bound to copies of the band values, since
    /// a V1 body may assign them).
    fn lower_pixel_function(
        &mut self,
        params: &'a FormalParameterList,
        function_body: &'a FunctionBody,
        v1: bool,
    ) -> Result<Vec<Stmt>, WasmError> {
        let mut scope = HashMap::new();
        let mut prelude = Vec::new();
        for (k, param) in params.as_ref().iter().enumerate() {
            if param.init().is_some() || param.is_rest_param() {
                return Err(unsupported("evaluatePixel parameter with default or rest"));
            }
            let ident = match param.variable().binding() {
                Binding::Identifier(ident) => ident,
                Binding::Pattern(pattern) if k == 0 && !v1 => {
                    // `function evaluatePixel({B04, B08})`
                    self.destructure_samples(pattern, &mut scope, &mut prelude)?;
                    continue;
                }
                Binding::Pattern(_) => {
                    return Err(unsupported("destructuring evaluatePixel parameter"))
                }
            };
            let sym = ident.sym();
            let binding = if v1 {
                let name = self.name(sym);
                let Some(band) = self.input_bands.iter().position(|b| *b == name) else {
                    return Err(unsupported(format!(
                        "V1 band '{name}' is not an input band"
                    )));
                };
                let source = self.band_local(band);
                let local = self.new_local(Ty::Num);
                prelude.push(Stmt::Expr(Expr::Set(local, Ty::Num, bx(get(source)))));
                Bind::Local {
                    local,
                    ty: Ty::Num,
                    constant: false,
                    global: false,
                }
            } else if k == 0 {
                if self.assigned.contains(&sym) {
                    return Err(unsupported(format!(
                        "evaluatePixel assigns its parameter '{}'",
                        self.name(sym)
                    )));
                }
                Bind::Samples
            } else {
                // Other parameters (scenes, metadata) are objects.
                Bind::Unusable(format!(
                    "evaluatePixel parameter '{}' (scenes/metadata) is used",
                    self.name(sym)
                ))
            };
            scope.insert(sym, binding);
        }
        self.scopes.push(scope);
        self.frames.push(FnFrame {
            var_scope: self.scopes.len() - 1,
            closure: None,
            ret_ty: None,
            ret_array: None,
            is_pixel: true,
            breakables: Vec::new(),
            hoisted: Vec::new(),
        });
        let body = self.function_body(function_body);
        let hoisted = self.frames.pop().map(|f| f.hoisted).unwrap_or_default();
        self.scopes.pop();
        let body = [prelude, hoist(&hoisted), body?].concat();
        if !always_returns(&body) {
            return Err(unsupported(
                "evaluatePixel can end without a return statement",
            ));
        }
        Ok(body)
    }

    /// `{B04, B08: nir}` as evaluatePixel's first parameter: each name is bound to a copy
    /// of the band value (a missing band or a default value is unsupported).
    fn destructure_samples(
        &mut self,
        pattern: &'a boa_engine::ast::pattern::Pattern,
        scope: &mut HashMap<Sym, Bind<'a>>,
        prelude: &mut Vec<Stmt>,
    ) -> Result<(), WasmError> {
        use boa_engine::ast::pattern::{ObjectPatternElement, Pattern};
        let Pattern::Object(object) = pattern else {
            return Err(unsupported("array pattern as evaluatePixel parameter"));
        };
        for element in object.bindings() {
            let ObjectPatternElement::SingleName {
                name,
                ident,
                default_init: None,
            } = element
            else {
                return Err(unsupported(
                    "evaluatePixel parameter pattern with defaults, rest or nesting",
                ));
            };
            let field = match name {
                PropertyName::Literal(id) => self.name(id.sym()),
                PropertyName::Computed(_) => {
                    return Err(unsupported("computed key in the evaluatePixel pattern"))
                }
            };
            let Some(band) = self.input_bands.iter().position(|b| *b == field) else {
                return Err(unsupported(format!(
                    "samples.{field} is not an input band of setup()"
                )));
            };
            let source = self.band_local(band);
            let local = self.new_local(Ty::Num);
            prelude.push(Stmt::Expr(Expr::Set(local, Ty::Num, bx(get(source)))));
            scope.insert(
                ident.sym(),
                Bind::Local {
                    local,
                    ty: Ty::Num,
                    constant: false,
                    global: false,
                },
            );
        }
        Ok(())
    }

    /// True for a function declaration directly in the body of the function being
    /// lowered, which `function_body` hoisted.
    fn hoisted_here(&self, f: &FunctionDeclaration) -> bool {
        let Some(var_scope) = self.frames.last().map(|f| f.var_scope) else {
            return false;
        };
        self.scopes.len() - 1 == var_scope
            && matches!(
                self.scopes[var_scope].get(&f.name().sym()),
                Some(Bind::Func { .. } | Bind::Unusable(_))
            )
    }

    fn frame(&mut self) -> &mut FnFrame {
        let last = self.frames.len() - 1;
        &mut self.frames[last]
    }

    fn stmts(&mut self, items: &'a [StatementListItem]) -> Result<Vec<Stmt>, WasmError> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                StatementListItem::Statement(stmt) => self.stmt(stmt, &mut out)?,
                StatementListItem::Declaration(decl) => match decl.as_ref() {
                    Declaration::Lexical(lexical) => self.lexical(lexical, &mut out)?,
                    // Hoisted by `function_body` when directly in a function body.
                    Declaration::FunctionDeclaration(f) if self.hoisted_here(f) => {}
                    Declaration::FunctionDeclaration(_) => {
                        return Err(unsupported("function declaration inside a block"))
                    }
                    _ => return Err(unsupported("nested class, generator or async declaration")),
                },
            }
        }
        Ok(out)
    }

    fn block(&mut self, stmt: &'a Statement) -> Result<Vec<Stmt>, WasmError> {
        self.scopes.push(HashMap::new());
        let mut out = Vec::new();
        let result = self.stmt(stmt, &mut out);
        self.scopes.pop();
        result.map(|_| out)
    }

    fn lexical(
        &mut self,
        lexical: &'a LexicalDeclaration,
        out: &mut Vec<Stmt>,
    ) -> Result<(), WasmError> {
        let constant = match lexical {
            LexicalDeclaration::Const(_) => true,
            LexicalDeclaration::Let(_) => false,
            _ => return Err(unsupported("using declaration")),
        };
        let scope = self.scopes.len() - 1;
        for var in lexical.variable_list().as_ref() {
            self.declare(var, constant, false, scope, out)?;
        }
        Ok(())
    }

    fn declare(
        &mut self,
        var: &'a Variable,
        constant: bool,
        is_var: bool,
        scope: usize,
        out: &mut Vec<Stmt>,
    ) -> Result<(), WasmError> {
        let Binding::Identifier(ident) = var.binding() else {
            return Err(unsupported("destructuring declaration"));
        };
        let sym = ident.sym();
        if let Some(init) = var.init() {
            // A `var` in a nested block may be skipped, leaving it undefined: only one
            // in the scope it belongs to is known to hold its initialiser.
            let reached = !is_var || self.scopes.len() - 1 == scope;
            if reached && !self.scopes[scope].contains_key(&sym) && !self.assigned.contains(&sym) {
                let binding = match strip_parens(init) {
                    Expression::FunctionExpression(f) => Some(Bind::Func {
                        params: f.parameters(),
                        body: f.body(),
                        def: self.definition_point(),
                    }),
                    Expression::ArrowFunction(f) => Some(Bind::Func {
                        params: f.parameters(),
                        body: f.body(),
                        def: self.definition_point(),
                    }),
                    Expression::Identifier(id)
                        if matches!(self.lookup(id.sym()), Some(Bind::Samples)) =>
                    {
                        Some(Bind::Samples)
                    }
                    // Never mutated: the compiler rejects element and method writes.
                    _ => match self.const_eval(init) {
                        Some(CVal::Num(v)) => {
                            // Still a local (cheap), but its value folds into tables.
                            let local = self.new_local(Ty::Num);
                            out.push(Stmt::Expr(Expr::Set(local, Ty::Num, bx(Expr::Num(v)))));
                            self.global_nums.insert(local, v);
                            Some(Bind::Local {
                                local,
                                ty: Ty::Num,
                                constant,
                                global: false,
                            })
                        }
                        None => None,
                        Some(c) => Some(Bind::Const(c)),
                    },
                };
                if let Some(binding) = binding {
                    self.scopes[scope].insert(sym, binding);
                    return Ok(());
                }
            }
            if let Val::Array(elems) = self.value(init)? {
                if self.scopes[scope].contains_key(&sym) {
                    return Err(unsupported(format!(
                        "array variable '{}' is redeclared",
                        self.name(sym)
                    )));
                }
                if constant && self.assigned.contains(&sym) {
                    return Err(unsupported(format!(
                        "assignment to constant '{}' (a TypeError at run time)",
                        self.name(sym)
                    )));
                }
                let locals = self.materialize(elems, out);
                self.scopes[scope].insert(sym, Bind::Array(locals));
                return Ok(());
            }
        }
        let init = match var.init() {
            Some(init) => Some(self.expr(init)?),
            None => None,
        };
        // `var` redeclaration reuses the binding.
        if let Some(Bind::Local { local, ty, .. }) = self.scopes[scope].get(&sym).cloned() {
            if let Some(init) = init {
                self.global_nums.remove(&local);
                if init.ty() != ty {
                    return Err(unsupported(format!(
                        "variable '{}' holds values of different types",
                        self.name(sym)
                    )));
                }
                out.push(Stmt::Expr(Expr::Set(local, ty, Box::new(init))));
            }
            return Ok(());
        }
        let init = init.unwrap_or(Expr::Num(f64::NAN));
        let ty = init.ty();
        let local = self.new_local(ty);
        if is_var {
            self.frame().hoisted.push((local, ty));
        }
        out.push(Stmt::Expr(Expr::Set(local, ty, Box::new(init))));
        self.scopes[scope].insert(
            sym,
            Bind::Local {
                local,
                ty,
                constant,
                global: false,
            },
        );
        Ok(())
    }

    fn stmt(&mut self, stmt: &'a Statement, out: &mut Vec<Stmt>) -> Result<(), WasmError> {
        self.count()?;
        match stmt {
            Statement::Empty => {}
            Statement::Block(block) => {
                self.scopes.push(HashMap::new());
                let result = self.stmts(block.statement_list().statements());
                self.scopes.pop();
                out.extend(result?);
            }
            Statement::Var(var) => {
                let scope = self.frame().var_scope;
                for var in var.0.as_ref() {
                    self.declare(var, false, true, scope, out)?;
                }
            }
            Statement::Expression(expr) => match self.array_assign(expr)? {
                Some(stmts) => out.extend(stmts),
                None => out.push(Stmt::Expr(self.expr(expr)?)),
            },
            Statement::If(stmt) => {
                let cond = to_bool(self.expr(stmt.cond())?);
                let then = self.block(stmt.body())?;
                let otherwise = match stmt.else_node() {
                    Some(node) => self.block(node)?,
                    None => Vec::new(),
                };
                out.push(Stmt::If(cond, then, otherwise));
            }
            Statement::Return(ret) => out.extend(self.ret(ret.target())?),
            Statement::WhileLoop(w) => {
                let cond = to_bool(self.expr(w.condition())?);
                let body = self.loop_body(w.body())?;
                out.push(Stmt::Loop {
                    cond: Some(cond),
                    body,
                    update: None,
                    test_first: true,
                });
            }
            Statement::DoWhileLoop(w) => {
                let body = self.loop_body(w.body())?;
                let cond = to_bool(self.expr(w.cond())?);
                out.push(Stmt::Loop {
                    cond: Some(cond),
                    body,
                    update: None,
                    test_first: false,
                });
            }
            Statement::ForLoop(f) => {
                self.scopes.push(HashMap::new());
                let result = self.for_loop(f, out);
                self.scopes.pop();
                result?;
            }
            Statement::Break(b) if b.label().is_none() && !self.frame().breakables.is_empty() => {
                out.push(Stmt::Break)
            }
            Statement::Continue(c)
                if c.label().is_none() && self.frame().breakables.last() == Some(&true) =>
            {
                out.push(Stmt::Continue)
            }
            Statement::Switch(switch) => {
                self.scopes.push(HashMap::new());
                let result = self.switch(switch, out);
                self.scopes.pop();
                result?;
            }
            other => {
                return Err(unsupported(format!(
                    "statement not supported: {}",
                    statement_kind(other)
                )))
            }
        }
        Ok(())
    }

    /// `c = [...]` as a statement, `c` a fixed-size array variable: the new elements
    /// (of the same count) are evaluated first, then stored. JS arrays are references,
    /// but the compiler never writes through one (element writes are unsupported and
    /// arguments are copies), so copying values is the same.
    fn array_assign(&mut self, e: &'a Expression) -> Result<Option<Vec<Stmt>>, WasmError> {
        let Expression::Assign(a) = strip_parens(e) else {
            return Ok(None);
        };
        let AssignTarget::Identifier(ident) = a.lhs() else {
            return Ok(None);
        };
        let Some(Bind::Array(locals)) = self.lookup(ident.sym()).cloned() else {
            return Ok(None);
        };
        if a.op() != AssignOp::Assign {
            return Err(unsupported("compound assignment to an array variable"));
        }
        let Val::Array(elements) = self.value(a.rhs())? else {
            return Err(unsupported(format!(
                "array variable '{}' assigned a non-array",
                self.name(ident.sym())
            )));
        };
        if elements.len() != locals.len() {
            return Err(unsupported(format!(
                "array variable '{}' assigned arrays of different lengths",
                self.name(ident.sym())
            )));
        }
        let mut out = Vec::new();
        let temps = self.materialize(elements, &mut out);
        for (l, t) in locals.iter().zip(temps) {
            out.push(Stmt::Expr(Expr::Set(*l, Ty::Num, bx(get(t)))));
        }
        Ok(Some(out))
    }

    fn for_loop(
        &mut self,
        f: &'a boa_engine::ast::statement::ForLoop,
        out: &mut Vec<Stmt>,
    ) -> Result<(), WasmError> {
        match f.init() {
            None => {}
            Some(ForLoopInitializer::Expression(e)) => out.push(Stmt::Expr(self.expr(e)?)),
            Some(ForLoopInitializer::Var(var)) => {
                let scope = self.frame().var_scope;
                for var in var.0.as_ref() {
                    self.declare(var, false, true, scope, out)?;
                }
            }
            Some(ForLoopInitializer::Lexical(lexical)) => {
                self.lexical(lexical.declaration(), out)?
            }
        }
        let cond = match f.condition() {
            Some(c) => Some(to_bool(self.expr(c)?)),
            None => None,
        };
        let update = match f.final_expr() {
            Some(e) => Some(self.expr(e)?),
            None => None,
        };
        let body = self.loop_body(f.body())?;
        out.push(Stmt::Loop {
            cond,
            body,
            update,
            test_first: true,
        });
        Ok(())
    }

    /// `switch` with constant cases: the discriminant is compared (`===`) with each case
    /// in source order to find the clause index `k` (the default clause's, or +Infinity),
    /// then a one-pass loop (the target of `break`) runs every clause `i >= k`, which is
    /// JS fall-through.
    fn switch(
        &mut self,
        switch: &'a boa_engine::ast::statement::Switch,
        out: &mut Vec<Stmt>,
    ) -> Result<(), WasmError> {
        let k = self.new_local(Ty::Num);
        let set_k = |i: f64| vec![Stmt::Expr(Expr::Set(k, Ty::Num, bx(Expr::Num(i))))];
        if let Some(s) = self.const_str(switch.val()) {
            // A constant string: the clause is known now.
            let mut chosen = None;
            let mut default = f64::INFINITY;
            for (i, case) in switch.cases().iter().enumerate() {
                match case.condition().map(|c| self.const_eval(c)) {
                    None => default = i as f64,
                    Some(Some(CVal::Str(c))) if c == s && chosen.is_none() => {
                        chosen = Some(i as f64)
                    }
                    Some(Some(_)) => {}
                    Some(None) => return Err(unsupported("switch case that is not a constant")),
                }
            }
            out.extend(set_k(chosen.unwrap_or(default)));
            return self.switch_body(switch, k, out);
        }
        let discriminant = self.expr(switch.val())?;
        let ty = discriminant.ty();
        let d = self.new_local(ty);
        out.push(Stmt::Expr(Expr::Set(d, ty, bx(discriminant))));
        let mut arms = Vec::new();
        let mut default = f64::INFINITY;
        for (i, case) in switch.cases().iter().enumerate() {
            let Some(condition) = case.condition() else {
                default = i as f64;
                continue;
            };
            if self.const_str(condition).is_some() {
                // A Number or Boolean is never strictly equal to a string.
                continue;
            }
            let literal_bool = match strip_parens(condition) {
                Expression::Literal(lit) => match lit.kind() {
                    LiteralKind::Bool(b) => Some(*b),
                    _ => None,
                },
                _ => None,
            };
            let test = match (ty, self.const_eval(condition), literal_bool) {
                (Ty::Num, Some(CVal::Num(v)), _) => cmp(Cmp::Eq, get(d), Expr::Num(v)),
                (Ty::Bool, _, Some(b)) => Expr::BoolEq {
                    ne: false,
                    a: bx(Expr::Get(d, Ty::Bool)),
                    b: bx(Expr::Bool(b)),
                },
                // Strict equality between a Boolean and a Number never holds.
                (Ty::Bool, Some(CVal::Num(_)), _) | (Ty::Num, _, Some(_)) => continue,
                _ => return Err(unsupported("switch case that is not a constant")),
            };
            arms.push((test, set_k(i as f64)));
        }
        out.extend(chain(arms, set_k(default)));
        self.switch_body(switch, k, out)
    }

    /// The clauses of a `switch` whose clause index is in local `k`: every clause from
    /// `k` on runs (fall-through) inside a one-pass loop that `break` leaves.
    fn switch_body(
        &mut self,
        switch: &'a boa_engine::ast::statement::Switch,
        k: u32,
        out: &mut Vec<Stmt>,
    ) -> Result<(), WasmError> {
        self.frame().breakables.push(false);
        let mut body = Vec::new();
        let mut result = Ok(());
        for (i, case) in switch.cases().iter().enumerate() {
            if case
                .body()
                .statements()
                .iter()
                .any(|item| matches!(item, StatementListItem::Declaration(_)))
            {
                // A clause entered by fall-through or a jump may read it uninitialised
                // (a ReferenceError in JS).
                result = Err(unsupported("let/const directly in a switch case"));
                break;
            }
            match self.stmts(case.body().statements()) {
                Ok(stmts) => body.push(Stmt::If(
                    cmp(Cmp::Le, get(k), Expr::Num(i as f64)),
                    stmts,
                    Vec::new(),
                )),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.frame().breakables.pop();
        result?;
        // With a default clause the index is always a clause's, so the last clause runs
        // whenever control gets there; if it always returns, the loop never falls out
        // (unless a clause breaks), which `always_returns` can then see.
        let has_default = switch.cases().iter().any(|c| c.condition().is_none());
        let last_returns = match body.last() {
            Some(Stmt::If(_, stmts, _)) => always_returns(stmts),
            _ => false,
        };
        if has_default && last_returns {
            if let Some(Stmt::If(_, stmts, _)) = body.pop() {
                body.extend(stmts);
            }
        } else {
            body.push(Stmt::Break);
        }
        out.push(Stmt::Loop {
            cond: None,
            body,
            update: None,
            test_first: true,
        });
        Ok(())
    }

    fn loop_body(&mut self, body: &'a Statement) -> Result<Vec<Stmt>, WasmError> {
        self.frame().breakables.push(true);
        let result = self.block(body);
        self.frame().breakables.pop();
        result
    }

    fn ret(&mut self, target: Option<&'a Expression>) -> Result<Vec<Stmt>, WasmError> {
        if self.frame().is_pixel {
            let Some(target) = target else {
                return Err(unsupported("evaluatePixel returns undefined"));
            };
            return self.pixel_return(target);
        }
        let value = match target {
            Some(e) => self.value(e)?,
            None => Val::Scalar(Expr::Num(f64::NAN)),
        };
        let value = match value {
            Val::Scalar(value) => value,
            Val::Array(elements) => return self.array_return(elements),
        };
        let ty = value.ty();
        let frame = self.frame();
        if frame.ret_array.is_some() {
            return Err(unsupported("function returns an array and a non-array"));
        }
        match frame.ret_ty {
            Some(t) if t != ty => Err(unsupported("function returns values of different types")),
            _ => {
                frame.ret_ty = Some(ty);
                Ok(vec![Stmt::FnReturn(value)])
            }
        }
    }

    /// `return [...]` in an inlined function: the elements go, in order, into the
    /// function's result locals (one set per function, so every return must have the
    /// same length); the call then yields them as a fixed-size array.
    fn array_return(&mut self, elements: Vec<Expr>) -> Result<Vec<Stmt>, WasmError> {
        if self.frame().ret_ty.is_some() {
            return Err(unsupported("function returns an array and a non-array"));
        }
        if elements.is_empty() {
            return Err(unsupported("function returns an empty array"));
        }
        let locals = match self.frame().ret_array.clone() {
            Some(locals) if locals.len() == elements.len() => locals,
            Some(_) => return Err(unsupported("function returns arrays of different lengths")),
            None => {
                let locals: Vec<u32> = elements.iter().map(|_| self.new_local(Ty::Num)).collect();
                self.frame().ret_array = Some(locals.clone());
                locals
            }
        };
        let mut out: Vec<Stmt> = locals
            .iter()
            .zip(elements)
            .map(|(l, e)| Stmt::Expr(Expr::Set(*l, Ty::Num, bx(to_num(e)))))
            .collect();
        out.push(Stmt::FnReturn(get(locals[0])));
        Ok(out)
    }

    /// `evaluatePixel`'s return: an array literal (single output), a bare value (single
    /// one-band output) or an object literal keyed by output id. Values are evaluated in
    /// source order into temporaries, then stored in output order, as boa does.
    fn pixel_return(&mut self, target: &'a Expression) -> Result<Vec<Stmt>, WasmError> {
        let mut prefix = Vec::new();
        let mut slots: Vec<Option<Expr>> = Vec::new();
        let total: usize = self.outputs.iter().map(|(_, b)| *b).sum();
        slots.resize(total, None);
        match strip_parens(target) {
            Expression::ObjectLiteral(object) => {
                let mut seen = vec![false; self.outputs.len()];
                for property in object.properties() {
                    let (key, value) = match property {
                        PropertyDefinition::Property(PropertyName::Literal(key), value) => {
                            (self.name(key.sym()), value)
                        }
                        PropertyDefinition::Property(PropertyName::Computed(e), value) => {
                            match strip_parens(e) {
                                Expression::Literal(lit) if lit.as_string().is_some() => {
                                    let sym = lit.as_string().unwrap_or(Sym::EMPTY_STRING);
                                    (self.name(sym), value)
                                }
                                _ => {
                                    return Err(unsupported("computed key in the returned object"))
                                }
                            }
                        }
                        _ => {
                            return Err(unsupported(
                                "returned object with shorthand, spread or method properties",
                            ))
                        }
                    };
                    match self.outputs.iter().position(|(id, _)| *id == key) {
                        Some(output) => {
                            // A duplicate key: the last value wins, as in JS.
                            seen[output] = true;
                            self.output_values(output, value, &mut prefix, &mut slots)?;
                        }
                        // Not an output: evaluated, then ignored.
                        None => self.discard_value(value, &mut prefix)?,
                    }
                }
                if let Some(missing) = seen.iter().position(|s| !s) {
                    return Err(unsupported(format!(
                        "returned object lacks output '{}'",
                        self.outputs[missing].0
                    )));
                }
            }
            e if self.outputs.len() == 1 => self.output_values(0, e, &mut prefix, &mut slots)?,
            _ => {
                return Err(unsupported(
                    "evaluatePixel must return an object literal keyed by output id",
                ))
            }
        }
        let values = slots
            .into_iter()
            .map(|slot| slot.unwrap_or(Expr::Num(f64::NAN)))
            .collect();
        prefix.push(Stmt::PixelReturn(values));
        Ok(prefix)
    }

    fn discard_value(
        &mut self,
        value: &'a Expression,
        prefix: &mut Vec<Stmt>,
    ) -> Result<(), WasmError> {
        match self.value(value)? {
            Val::Array(elements) => prefix.extend(elements.into_iter().map(Stmt::Expr)),
            Val::Scalar(e) => prefix.push(Stmt::Expr(e)),
        }
        Ok(())
    }

    /// Lowers the value for output `output` into temporaries and fills its slots.
    fn output_values(
        &mut self,
        output: usize,
        value: &'a Expression,
        prefix: &mut Vec<Stmt>,
        slots: &mut [Option<Expr>],
    ) -> Result<(), WasmError> {
        let bands = self.outputs[output].1;
        let first: usize = self.outputs[..output].iter().map(|(_, b)| *b).sum();
        let mut store = |lw: &mut Self, k: usize, e: Expr| {
            let e = to_num(e);
            if k < bands {
                let tmp = lw.new_local(Ty::Num);
                prefix.push(Stmt::Expr(Expr::Set(tmp, Ty::Num, Box::new(e))));
                slots[first + k] = Some(Expr::Get(tmp, Ty::Num));
            } else {
                // Extra elements are evaluated but not stored, as in boa.
                prefix.push(Stmt::Expr(e));
            }
        };
        match self.value(value)? {
            Val::Array(elements) => {
                if elements.len() < bands {
                    return Err(unsupported(format!(
                        "evaluatePixel returns {} values for {bands} output bands",
                        elements.len()
                    )));
                }
                for (k, e) in elements.into_iter().enumerate() {
                    store(self, k, e);
                }
            }
            Val::Scalar(e) if bands == 1 => store(self, 0, e),
            Val::Scalar(_) => {
                return Err(unsupported(
                    "evaluatePixel must return an array literal to be compiled",
                ))
            }
        }
        Ok(())
    }

    fn lookup(&self, sym: Sym) -> Option<&Bind<'a>> {
        let frame = self.frames.last();
        let frame_base = frame.map(|f| f.var_scope).unwrap_or(0);
        // The current function's scopes, then (nested functions) the var scope of each
        // enclosing definition, then the global scope. A top-level helper does not see
        // its caller's locals; a nested one sees its definer's top-level bindings only.
        for scope in self.scopes[frame_base..].iter().rev() {
            if let Some(b) = scope.get(&sym) {
                return Some(b);
            }
        }
        let mut closure = frame.and_then(|f| f.closure);
        while let Some((c, innermost)) = closure {
            let f = &self.frames[c];
            for scope in self.scopes[f.var_scope..=innermost].iter().rev() {
                if let Some(b) = scope.get(&sym) {
                    return Some(b);
                }
            }
            closure = f.closure;
        }
        if frame_base > 0 {
            return self.scopes[0].get(&sym);
        }
        None
    }

    fn local_binding(&self, sym: Sym) -> Result<(u32, Ty, bool, bool), WasmError> {
        match self.lookup(sym) {
            Some(Bind::Local {
                local,
                ty,
                constant,
                global,
            }) => Ok((*local, *ty, *constant, *global)),
            Some(Bind::Unusable(reason)) => Err(unsupported(reason.clone())),
            Some(Bind::Const(CVal::Str(_))) => Err(unsupported(format!(
                "string '{}' used other than in an equality test or switch",
                self.name(sym)
            ))),
            Some(Bind::Const(_) | Bind::Array(_)) => Err(unsupported(format!(
                "array value '{}' used as a number",
                self.name(sym)
            ))),
            Some(Bind::Samples) => Err(unsupported(format!(
                "the samples object '{}' used as a value",
                self.name(sym)
            ))),
            Some(Bind::Func { .. }) => Err(unsupported(format!(
                "function '{}' used as a value",
                self.name(sym)
            ))),
            None => Err(unsupported(format!(
                "unknown identifier '{}'",
                self.name(sym)
            ))),
        }
    }

    fn expr(&mut self, e: &'a Expression) -> Result<Expr, WasmError> {
        self.count()?;
        Ok(match e {
            Expression::Parenthesized(p) => self.expr(p.expression())?,
            Expression::Literal(lit) => match lit.kind() {
                LiteralKind::Num(v) => Expr::Num(*v),
                LiteralKind::Int(v) => Expr::Num(f64::from(*v)),
                LiteralKind::Bool(b) => Expr::Bool(*b),
                LiteralKind::String(_) => {
                    return Err(unsupported(
                        "string used other than in an equality test or switch",
                    ))
                }
                LiteralKind::Null => return Err(unsupported("null literal")),
                _ => return Err(unsupported("non-numeric literal")),
            },
            Expression::Identifier(ident) => {
                let sym = ident.sym();
                match self.lookup(sym) {
                    Some(_) => {
                        let (local, ty, _, _) = self.local_binding(sym)?;
                        Expr::Get(local, ty)
                    }
                    None => match self.name(sym).as_str() {
                        "NaN" => Expr::Num(f64::NAN),
                        "Infinity" => Expr::Num(f64::INFINITY),
                        "JAVA_DOUBLE_MAX_VAL" => Expr::Num(f64::MAX),
                        other => return Err(unsupported(format!("unknown identifier '{other}'"))),
                    },
                }
            }
            Expression::PropertyAccess(access) => self.property(access)?,
            Expression::Unary(u) => {
                let target = self.expr(u.target())?;
                match u.op() {
                    UnaryOp::Minus => Expr::Neg(Box::new(to_num(target))),
                    UnaryOp::Plus => to_num(target),
                    UnaryOp::Not => Expr::Not(Box::new(to_bool(target))),
                    _ => return Err(unsupported("unary operator other than - + !")),
                }
            }
            Expression::Binary(b) => self.binary(b.op(), b.lhs(), b.rhs())?,
            Expression::Conditional(c) => {
                let cond = to_bool(self.expr(c.condition())?);
                let (a, b) = self.same_type(c.if_true(), c.if_false(), "conditional")?;
                let ty = a.ty();
                Expr::Cond(Box::new(cond), Box::new(a), Box::new(b), ty)
            }
            Expression::Assign(a) => self.assign(a)?,
            Expression::Update(u) => {
                let UpdateTarget::Identifier(ident) = u.target() else {
                    return Err(unsupported("++/-- on a property"));
                };
                let (local, ty, constant, global) = self.local_binding(ident.sym())?;
                self.check_assignable(ident.sym(), ty, Ty::Num, constant, global)?;
                let delta = match u.op() {
                    UpdateOp::IncrementPost | UpdateOp::IncrementPre => 1.0,
                    _ => -1.0,
                };
                let new = Expr::Arith(
                    Arith::Add,
                    Box::new(Expr::Get(local, Ty::Num)),
                    Box::new(Expr::Num(delta)),
                );
                let set = Expr::Set(local, Ty::Num, Box::new(new));
                match u.op() {
                    UpdateOp::IncrementPre | UpdateOp::DecrementPre => set,
                    // Post: new value minus delta is the old value, except for the
                    // rounding of huge values; yield the old value exactly instead.
                    _ => {
                        let tmp = self.new_local(Ty::Num);
                        Expr::Inline(
                            vec![
                                Stmt::Expr(Expr::Set(
                                    tmp,
                                    Ty::Num,
                                    Box::new(Expr::Get(local, Ty::Num)),
                                )),
                                Stmt::Expr(set),
                                Stmt::FnReturn(Expr::Get(tmp, Ty::Num)),
                            ],
                            Ty::Num,
                        )
                    }
                }
            }
            Expression::Call(call) => self.call(call.function(), call.args())?,
            other => {
                return Err(unsupported(format!(
                    "expression not supported: {}",
                    expression_kind(other)
                )))
            }
        })
    }

    fn same_type(
        &mut self,
        a: &'a Expression,
        b: &'a Expression,
        what: &str,
    ) -> Result<(Expr, Expr), WasmError> {
        let a = self.expr(a)?;
        let b = self.expr(b)?;
        if a.ty() != b.ty() {
            return Err(unsupported(format!("{what} mixes a boolean and a number")));
        }
        Ok((a, b))
    }

    fn property(&mut self, access: &'a PropertyAccess) -> Result<Expr, WasmError> {
        let PropertyAccess::Simple(simple) = access else {
            return Err(unsupported("private or super property access"));
        };
        if let Some(CVal::Num(v)) = self.const_access(simple) {
            return Ok(Expr::Num(v));
        }
        let field = match simple.field() {
            PropertyAccessField::Const(ident) => Some(self.name(ident.sym())),
            PropertyAccessField::Expr(e) => match self.const_eval(e) {
                Some(CVal::Str(s)) => Some(s),
                // `x[2]`: the key is the Number's string form (integers only here).
                Some(CVal::Num(v)) if v.fract() == 0.0 && v.abs() < 1e15 => {
                    Some(format!("{}", v as i64))
                }
                Some(_) => return Err(unsupported("computed property access")),
                None => None,
            },
        };
        let object = match strip_parens(simple.target()) {
            Expression::Identifier(object) if field.is_some() || self.is_array(object.sym()) => {
                object
            }
            target => {
                // An element of a computed fixed-size array (`f(x)[1]`, `[a, b][i]`), or a
                // run-time index into an array variable.
                let elements = match self.value(target)? {
                    Val::Array(elements) => elements,
                    Val::Scalar(_) => {
                        return Err(unsupported(match field {
                            Some(_) => "property access on an expression",
                            None => "computed property access",
                        }))
                    }
                };
                let mut pre = Vec::new();
                let locals = self.materialize(elements, &mut pre);
                let values: Vec<Expr> = locals.iter().map(|l| get(*l)).collect();
                let e = self.index_into(values, field.as_deref(), Some(simple.field()))?;
                pre.push(Stmt::FnReturn(e));
                return Ok(Expr::Inline(pre, Ty::Num));
            }
        };
        let Some(field) = field else {
            let values = self.array_values(object.sym())?;
            return self.index_into(values, None, Some(simple.field()));
        };
        let object_sym = object.sym();
        if let Some(e) = self.element(object_sym, &field)? {
            return Ok(e);
        }
        if matches!(self.lookup(object_sym), Some(Bind::Samples)) {
            let Some(band) = self.input_bands.iter().position(|b| *b == field) else {
                return Err(unsupported(format!(
                    "samples.{field} is not an input band of setup()"
                )));
            };
            return Ok(Expr::Get(self.band_local(band), Ty::Num));
        }
        if self.name(object_sym) == "Math" && self.lookup(object_sym).is_none() {
            let value = match field.as_str() {
                "PI" => std::f64::consts::PI,
                "E" => std::f64::consts::E,
                "LN2" => std::f64::consts::LN_2,
                "LN10" => std::f64::consts::LN_10,
                "LOG2E" => std::f64::consts::LOG2_E,
                "LOG10E" => std::f64::consts::LOG10_E,
                "SQRT2" => std::f64::consts::SQRT_2,
                "SQRT1_2" => std::f64::consts::FRAC_1_SQRT_2,
                _ => return Err(unsupported(format!("Math.{field} as a value"))),
            };
            return Ok(Expr::Num(value));
        }
        if self.name(object_sym) == "Number" && self.lookup(object_sym).is_none() {
            let value = match field.as_str() {
                "NaN" => f64::NAN,
                "POSITIVE_INFINITY" => f64::INFINITY,
                "NEGATIVE_INFINITY" => f64::NEG_INFINITY,
                "MAX_VALUE" => f64::MAX,
                "MIN_VALUE" => 5e-324,
                "EPSILON" => f64::EPSILON,
                _ => return Err(unsupported(format!("Number.{field}"))),
            };
            return Ok(Expr::Num(value));
        }
        Err(unsupported(format!(
            "property access {}.{field}",
            self.name(object_sym)
        )))
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        lhs: &'a Expression,
        rhs: &'a Expression,
    ) -> Result<Expr, WasmError> {
        if let BinaryOp::Relational(
            rop @ (RelationalOp::Equal
            | RelationalOp::StrictEqual
            | RelationalOp::NotEqual
            | RelationalOp::StrictNotEqual),
        ) = op
        {
            let (a, b) = (self.const_str(lhs), self.const_str(rhs));
            if a.is_some() || b.is_some() {
                return self.string_equality(rop, lhs, rhs, a, b);
            }
        }
        Ok(match op {
            BinaryOp::Arithmetic(op) => {
                if op == ArithmeticOp::Exp {
                    return self.exponent(lhs, rhs);
                }
                let a = to_num(self.expr(lhs)?);
                let b = to_num(self.expr(rhs)?);
                arith(op, a, b)
            }
            BinaryOp::Relational(op) => {
                let a = self.expr(lhs)?;
                let b = self.expr(rhs)?;
                let cmp = match op {
                    RelationalOp::LessThan => Cmp::Lt,
                    RelationalOp::LessThanOrEqual => Cmp::Le,
                    RelationalOp::GreaterThan => Cmp::Gt,
                    RelationalOp::GreaterThanOrEqual => Cmp::Ge,
                    RelationalOp::Equal
                    | RelationalOp::StrictEqual
                    | RelationalOp::NotEqual
                    | RelationalOp::StrictNotEqual => {
                        let ne =
                            matches!(op, RelationalOp::NotEqual | RelationalOp::StrictNotEqual);
                        let strict =
                            matches!(op, RelationalOp::StrictEqual | RelationalOp::StrictNotEqual);
                        if a.ty() == Ty::Bool && b.ty() == Ty::Bool {
                            return Ok(Expr::BoolEq {
                                ne,
                                a: Box::new(a),
                                b: Box::new(b),
                            });
                        }
                        if strict && a.ty() != b.ty() {
                            return Err(unsupported("=== between a boolean and a number"));
                        }
                        if ne {
                            Cmp::Ne
                        } else {
                            Cmp::Eq
                        }
                    }
                    _ => return Err(unsupported("'in' or 'instanceof'")),
                };
                Expr::Cmp(cmp, Box::new(to_num(a)), Box::new(to_num(b)))
            }
            BinaryOp::Logical(op) => {
                let or = match op {
                    LogicalOp::And => false,
                    LogicalOp::Or => true,
                    LogicalOp::Coalesce => return Err(unsupported("?? operator")),
                };
                let (a, b) = self.same_type(lhs, rhs, "&& or ||")?;
                let ty = a.ty();
                let tmp = if ty == Ty::Num {
                    self.new_local(Ty::Num)
                } else {
                    0
                };
                Expr::Logic {
                    or,
                    a: Box::new(a),
                    b: Box::new(b),
                    ty,
                    tmp,
                }
            }
            BinaryOp::Comma => {
                let a = self.expr(lhs)?;
                let b = self.expr(rhs)?;
                let ty = b.ty();
                Expr::Inline(vec![Stmt::Expr(a), Stmt::FnReturn(b)], ty)
            }
            BinaryOp::Bitwise(_) => return Err(unsupported("bitwise operator")),
        })
    }

    /// A compile-time string value of `e`, if it is one.
    fn const_str(&self, e: &Expression) -> Option<String> {
        match self.const_eval(e) {
            Some(CVal::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// `==`, `===`, `!=`, `!==` with a constant string on at least one side. Two
    /// strings compare now. Against a Number or Boolean, strict equality never holds and
    /// loose equality compares with the string's numeric value (JS StringToNumber, for
    /// the decimal forms; others are unsupported).
    fn string_equality(
        &mut self,
        op: RelationalOp,
        lhs: &'a Expression,
        rhs: &'a Expression,
        a: Option<String>,
        b: Option<String>,
    ) -> Result<Expr, WasmError> {
        let ne = matches!(op, RelationalOp::NotEqual | RelationalOp::StrictNotEqual);
        let strict = matches!(op, RelationalOp::StrictEqual | RelationalOp::StrictNotEqual);
        let (s, other) = match (a, b) {
            (Some(a), Some(b)) => return Ok(Expr::Bool((a == b) != ne)),
            (Some(s), None) => (s, rhs),
            (None, Some(s)) => (s, lhs),
            (None, None) => return Err(unsupported("string comparison")),
        };
        if matches!(
            self.const_eval(other),
            Some(CVal::Arr(_) | CVal::Obj(_) | CVal::Viz(_))
        ) {
            return Err(unsupported("comparison of a string with an object"));
        }
        let value = self.expr(other)?;
        if strict {
            return Ok(Expr::Inline(
                vec![Stmt::Expr(value), Stmt::FnReturn(Expr::Bool(ne))],
                Ty::Bool,
            ));
        }
        let Some(n) = string_to_number(&s) else {
            return Err(unsupported(format!("== between '{s}' and a number")));
        };
        let op = if ne { Cmp::Ne } else { Cmp::Eq };
        Ok(cmp(op, to_num(value), Expr::Num(n)))
    }

    /// `**`: boa computes `powi` when the exponent is an int32 value at run time, which
    /// is only known statically for literals.
    fn exponent(&mut self, lhs: &'a Expression, rhs: &'a Expression) -> Result<Expr, WasmError> {
        let base = to_num(self.expr(lhs)?);
        let literal = match strip_parens(rhs) {
            Expression::Literal(lit) => literal_number(lit.kind()),
            Expression::Unary(u) if u.op() == UnaryOp::Minus => match strip_parens(u.target()) {
                Expression::Literal(lit) => literal_number(lit.kind()).map(|v| -v),
                _ => None,
            },
            _ => None,
        };
        let Some(exp) = literal else {
            return Err(unsupported("** with a computed exponent"));
        };
        // boa stores a literal as int32 when it round-trips bit for bit (so not -0).
        let is_int = f64::from(exp as i32).to_bits() == exp.to_bits();
        if is_int {
            // A base that is itself an int literal takes boa's checked integer path,
            // which agrees with powi only when exact: keep it simple and refuse.
            if matches!(strip_parens(lhs), Expression::Literal(_)) {
                return Err(unsupported("** on two integer literals"));
            }
            Ok(Expr::Host(Host::Powi, vec![base, Expr::Num(exp)]))
        } else {
            Ok(Expr::Host(Host::Pow, vec![base, Expr::Num(exp)]))
        }
    }

    fn check_assignable(
        &self,
        sym: Sym,
        ty: Ty,
        new_ty: Ty,
        constant: bool,
        global: bool,
    ) -> Result<(), WasmError> {
        if constant {
            return Err(unsupported(format!(
                "assignment to constant '{}' (a TypeError at run time)",
                self.name(sym)
            )));
        }
        if global {
            return Err(unsupported(format!(
                "evaluatePixel assigns global '{}'",
                self.name(sym)
            )));
        }
        if ty != new_ty {
            return Err(unsupported(format!(
                "variable '{}' holds values of different types",
                self.name(sym)
            )));
        }
        Ok(())
    }

    fn assign(
        &mut self,
        a: &'a boa_engine::ast::expression::operator::Assign,
    ) -> Result<Expr, WasmError> {
        let AssignTarget::Identifier(ident) = a.lhs() else {
            return Err(unsupported("assignment to a property or pattern"));
        };
        let sym = ident.sym();
        let (local, ty, constant, global) = self.local_binding(sym)?;
        let rhs = self.expr(a.rhs())?;
        let value = match a.op() {
            AssignOp::Assign => rhs,
            op => {
                let arith_op = match op {
                    AssignOp::Add => ArithmeticOp::Add,
                    AssignOp::Sub => ArithmeticOp::Sub,
                    AssignOp::Mul => ArithmeticOp::Mul,
                    AssignOp::Div => ArithmeticOp::Div,
                    AssignOp::Mod => ArithmeticOp::Mod,
                    _ => return Err(unsupported("compound assignment operator")),
                };
                arith(arith_op, to_num(Expr::Get(local, ty)), to_num(rhs))
            }
        };
        self.check_assignable(sym, ty, value.ty(), constant, global)?;
        Ok(Expr::Set(local, ty, Box::new(value)))
    }

    fn call(&mut self, callee: &'a Expression, args: &'a [Expression]) -> Result<Expr, WasmError> {
        let called = match self.intrinsic(callee, args)? {
            Some(v) => Some(v),
            None => self.user_call(callee, args)?,
        };
        if let Some(v) = called {
            return match v {
                Val::Scalar(e) => Ok(e),
                Val::Array(_) => Err(unsupported("array value used as a number")),
            };
        }
        match strip_parens(callee) {
            Expression::PropertyAccess(PropertyAccess::Simple(simple)) => {
                let Expression::Identifier(object) = strip_parens(simple.target()) else {
                    return Err(unsupported("method call on an expression"));
                };
                let PropertyAccessField::Const(method) = simple.field() else {
                    return Err(unsupported("computed method call"));
                };
                let shadowed = self.lookup(object.sym()).is_some();
                let (object, method) = (self.name(object.sym()), self.name(method.sym()));
                if object == "Math" && !shadowed {
                    return self.math(&method, args);
                }
                if object == "Number" && !shadowed && (method == "isNaN" || method == "isFinite") {
                    // Number.isNaN/isFinite are false for booleans.
                    let arg = self.args(args, 1)?.remove(0);
                    if arg.ty() == Ty::Bool {
                        return Ok(Expr::Inline(
                            vec![
                                Stmt::Expr(arg),
                                Stmt::FnReturn(Expr::Bool(method == "isFinite")),
                            ],
                            Ty::Bool,
                        ));
                    }
                    return Ok(self.nan_test(&method, arg));
                }
                Err(unsupported(format!("method call '{object}'.{method}()")))
            }
            Expression::Identifier(ident) => {
                let sym = ident.sym();
                let name = self.name(sym);
                if self.lookup(sym).is_some() {
                    return Err(unsupported(format!("call of variable '{name}'")));
                }
                match name.as_str() {
                    "isNaN" | "isFinite" => {
                        let arg = to_num(self.args(args, 1)?.remove(0));
                        Ok(self.nan_test(&name, arg))
                    }
                    _ => Err(unsupported(format!("call of unknown function '{name}'"))),
                }
            }
            _ => Err(unsupported("call of a computed function")),
        }
    }

    /// `isNaN`/`isFinite` on a Number (evaluated once, through a temporary).
    fn nan_test(&mut self, name: &str, arg: Expr) -> Expr {
        let tmp = self.new_local(Ty::Num);
        let get = || Box::new(Expr::Get(tmp, Ty::Num));
        let test = if name.ends_with("isNaN") {
            Expr::Cmp(Cmp::Ne, get(), get())
        } else {
            // |x| < Infinity is false for NaN and ±Infinity.
            Expr::Cmp(
                Cmp::Lt,
                Box::new(Expr::Un(F64Un::Abs, get())),
                Box::new(Expr::Num(f64::INFINITY)),
            )
        };
        Expr::Inline(
            vec![
                Stmt::Expr(Expr::Set(tmp, Ty::Num, Box::new(arg))),
                Stmt::FnReturn(test),
            ],
            Ty::Bool,
        )
    }

    /// Lowers exactly `n` arguments (missing ones would be `undefined`: unsupported).
    fn args(&mut self, args: &'a [Expression], n: usize) -> Result<Vec<Expr>, WasmError> {
        if args.len() != n {
            return Err(unsupported(format!(
                "call with {} arguments where {n} are expected",
                args.len()
            )));
        }
        let mut out = Vec::with_capacity(n);
        for a in args {
            if matches!(a, Expression::Spread(_)) {
                return Err(unsupported("spread argument"));
            }
            out.push(self.expr(a)?);
        }
        Ok(out)
    }

    fn math(&mut self, method: &str, args: &'a [Expression]) -> Result<Expr, WasmError> {
        let un = |op: F64Un| Some(op);
        let f64_un = match method {
            "abs" => un(F64Un::Abs),
            "sqrt" => un(F64Un::Sqrt),
            "floor" => un(F64Un::Floor),
            "ceil" => un(F64Un::Ceil),
            "trunc" => un(F64Un::Trunc),
            "fround" => un(F64Un::Fround),
            _ => None,
        };
        if let Some(op) = f64_un {
            let a = to_num(self.args(args, 1)?.remove(0));
            return Ok(Expr::Un(op, Box::new(a)));
        }
        if method == "max" || method == "min" || method == "hypot" {
            let mut values = Vec::with_capacity(args.len());
            for a in args {
                if let Expression::Spread(spread) = a {
                    match self.value(spread.target())? {
                        Val::Array(elements) => values.extend(elements.into_iter().map(to_num)),
                        Val::Scalar(_) => return Err(unsupported("spread of a non-array")),
                    }
                    continue;
                }
                values.push(to_num(self.expr(a)?));
            }
            let (init, step): (f64, &dyn Fn(Expr, Expr) -> Expr) = match method {
                "max" => (f64::NEG_INFINITY, &|acc, x| {
                    Expr::Arith(Arith::Max, Box::new(acc), Box::new(x))
                }),
                "min" => (f64::INFINITY, &|acc, x| {
                    Expr::Arith(Arith::Min, Box::new(acc), Box::new(x))
                }),
                _ => (0.0, &|acc, x| Expr::Host(Host::Hypot, vec![acc, x])),
            };
            let mut values = values.into_iter();
            let mut acc = match (method, values.next()) {
                // max(-Inf, x) = x and min(+Inf, x) = x, NaN included: start from x.
                ("max" | "min", Some(first)) => first,
                (_, Some(first)) => step(Expr::Num(init), first),
                (_, None) => Expr::Num(init),
            };
            for v in values {
                acc = step(acc, v);
            }
            return Ok(acc);
        }
        let host = match method {
            "pow" => Host::Pow,
            "atan2" => Host::Atan2,
            "round" => Host::Round,
            "sign" => Host::Sign,
            "exp" => Host::Exp,
            "expm1" => Host::Expm1,
            "log" => Host::Log,
            "log1p" => Host::Log1p,
            "log2" => Host::Log2,
            "log10" => Host::Log10,
            "cbrt" => Host::Cbrt,
            "sin" => Host::Sin,
            "cos" => Host::Cos,
            "tan" => Host::Tan,
            "asin" => Host::Asin,
            "acos" => Host::Acos,
            "atan" => Host::Atan,
            "sinh" => Host::Sinh,
            "cosh" => Host::Cosh,
            "tanh" => Host::Tanh,
            "asinh" => Host::Asinh,
            "acosh" => Host::Acosh,
            "atanh" => Host::Atanh,
            _ => return Err(unsupported(format!("Math.{method}"))),
        };
        let values = self
            .args(args, host.arity())?
            .into_iter()
            .map(to_num)
            .collect();
        Ok(Expr::Host(host, values))
    }

    /// A call of a function the script defines (top-level, nested, or a function
    /// expression held in a constant), inlined; `None` when `callee` is not one.
    fn user_call(
        &mut self,
        callee: &'a Expression,
        args: &'a [Expression],
    ) -> Result<Option<Val>, WasmError> {
        let Expression::Identifier(ident) = strip_parens(callee) else {
            return Ok(None);
        };
        let sym = ident.sym();
        let (params, body, def) = match self.lookup(sym) {
            Some(Bind::Func { params, body, def }) => (*params, *body, *def),
            Some(Bind::Unusable(reason)) => return Err(unsupported(reason.clone())),
            Some(_) => return Ok(None),
            None => match self.functions.get(&sym).copied() {
                Some(f) => (f.parameters(), f.body(), None),
                None => return Ok(None),
            },
        };
        if self.assigned.contains(&sym) {
            return Err(unsupported(format!(
                "function '{}' is reassigned",
                self.name(sym)
            )));
        }
        if self.inline_stack.contains(&sym) {
            return Err(unsupported(format!(
                "recursive function '{}'",
                self.name(sym)
            )));
        }
        if self.inline_stack.len() >= MAX_INLINE_DEPTH {
            return Err(unsupported("functions nested too deeply to inline"));
        }
        let mut pre = Vec::new();
        let mut values = Vec::new();
        for a in args {
            values.push(self.arg(a, &mut pre)?);
        }
        self.inline_stack.push(sym);
        let result = self.inline_with(params, body, pre, values, def);
        self.inline_stack.pop();
        result.map(Some)
    }

    /// Lowers one call argument, in order: a scalar into a fresh local (statements in
    /// `pre`), the samples object, arrays, tables, constant strings and functions as
    /// bindings passed whole (arrays are never written through, so sharing is safe).
    fn arg(&mut self, a: &'a Expression, pre: &mut Vec<Stmt>) -> Result<Arg<'a>, WasmError> {
        if matches!(a, Expression::Spread(_)) {
            return Err(unsupported("spread argument"));
        }
        if let Expression::Identifier(id) = strip_parens(a) {
            match self.lookup(id.sym()) {
                Some(b @ (Bind::Samples | Bind::Const(_) | Bind::Func { .. })) => {
                    return Ok(Arg::Bound(b.clone()))
                }
                // A copy: the callee may reassign its parameter, the caller its variable.
                Some(Bind::Array(locals)) => {
                    let values = locals.iter().map(|l| get(*l)).collect();
                    return Ok(Arg::Bound(Bind::Array(self.materialize(values, pre))));
                }
                _ => {}
            }
        }
        match strip_parens(a) {
            Expression::FunctionExpression(f) => {
                return Ok(Arg::Bound(Bind::Func {
                    params: f.parameters(),
                    body: f.body(),
                    def: self.definition_point(),
                }))
            }
            Expression::ArrowFunction(f) => {
                return Ok(Arg::Bound(Bind::Func {
                    params: f.parameters(),
                    body: f.body(),
                    def: self.definition_point(),
                }))
            }
            _ => {}
        }
        if let Some(c @ (CVal::Arr(_) | CVal::Str(_) | CVal::Viz(_))) = self.const_eval(a) {
            return Ok(Arg::Bound(Bind::Const(c)));
        }
        Ok(match self.value(a)? {
            Val::Array(elements) => Arg::Bound(Bind::Array(self.materialize(elements, pre))),
            Val::Scalar(e) => {
                let ty = e.ty();
                let local = self.new_local(ty);
                pre.push(Stmt::Expr(Expr::Set(local, ty, bx(e))));
                Arg::Bound(Bind::Local {
                    local,
                    ty,
                    constant: false,
                    global: false,
                })
            }
        })
    }

    /// Inlines a function body after `pre` (the arguments' evaluation) with `values`
    /// bound to its parameters (missing ones are undefined; extra ones were evaluated in
    /// `pre`). A scalar result is an `Inline` expression; a function returning arrays
    /// gives a fixed-size array whose first element carries the body.
    fn inline_with(
        &mut self,
        params: &'a FormalParameterList,
        function_body: &'a FunctionBody,
        pre: Vec<Stmt>,
        values: Vec<Arg<'a>>,
        closure: Option<(usize, usize)>,
    ) -> Result<Val, WasmError> {
        let mut body = pre;
        let mut scope = HashMap::new();
        let mut values = values.into_iter();
        for param in params.as_ref() {
            if param.init().is_some() || param.is_rest_param() {
                return Err(unsupported("parameter with default or rest"));
            }
            let Binding::Identifier(ident) = param.variable().binding() else {
                return Err(unsupported("destructuring parameter"));
            };
            let binding = match values.next() {
                Some(Arg::Bound(binding)) => binding,
                value => {
                    // A missing argument is undefined: NaN as a number.
                    let value = match value {
                        Some(Arg::Value(e)) => e,
                        _ => Expr::Num(f64::NAN),
                    };
                    let ty = value.ty();
                    let local = self.new_local(ty);
                    body.push(Stmt::Expr(Expr::Set(local, ty, Box::new(value))));
                    Bind::Local {
                        local,
                        ty,
                        constant: false,
                        global: false,
                    }
                }
            };
            scope.insert(ident.sym(), binding);
        }
        // Extra arguments are still evaluated.
        for extra in values {
            if let Arg::Value(e) = extra {
                body.push(Stmt::Expr(e));
            }
        }
        self.scopes.push(scope);
        self.frames.push(FnFrame {
            var_scope: self.scopes.len() - 1,
            closure,
            ret_ty: None,
            ret_array: None,
            is_pixel: false,
            breakables: Vec::new(),
            hoisted: Vec::new(),
        });
        let result = self.function_body(function_body);
        let frame = self.frames.pop();
        self.scopes.pop();
        let stmts = result?;
        let Some(frame) = frame else {
            return Err(unsupported("internal: no frame"));
        };
        body.extend(hoist(&frame.hoisted));
        if let Some(locals) = frame.ret_array {
            if !always_returns(&stmts) {
                return Err(unsupported(
                    "function returning an array can end without a return",
                ));
            }
            body.extend(stmts);
            let mut out = vec![Expr::Inline(body, Ty::Num)];
            out.extend(locals.iter().skip(1).map(|l| get(*l)));
            return Ok(Val::Array(out));
        }
        let ty = frame.ret_ty.unwrap_or(Ty::Num);
        if ty == Ty::Bool && !always_returns(&stmts) {
            return Err(unsupported(
                "boolean function that can end without a return",
            ));
        }
        body.extend(stmts);
        Ok(Val::Scalar(Expr::Inline(body, ty)))
    }

    /// Where a function expression met now is defined (for its closure).
    fn definition_point(&self) -> Option<(usize, usize)> {
        let frame = self.frames.len().checked_sub(1)?;
        Some((frame, self.scopes.len() - 1))
    }

    /// A function's statements, with its nested function declarations hoisted into its
    /// var scope first (callable before their declaration, as in JS).
    fn function_body(&mut self, body: &'a FunctionBody) -> Result<Vec<Stmt>, WasmError> {
        let items = body.statements();
        let scope = self.frame().var_scope;
        let def = Some((self.frames.len() - 1, scope));
        for item in items {
            if let StatementListItem::Declaration(decl) = item {
                if let Declaration::FunctionDeclaration(f) = decl.as_ref() {
                    let sym = f.name().sym();
                    let binding = if self.assigned.contains(&sym) {
                        Bind::Unusable(format!("function '{}' is reassigned", self.name(sym)))
                    } else {
                        Bind::Func {
                            params: f.parameters(),
                            body: f.body(),
                            def,
                        }
                    };
                    self.scopes[scope].insert(sym, binding);
                }
            }
        }
        self.stmts(items)
    }
}

/// Initialises hoisted `var` locals to undefined (NaN, or false for a Boolean).
fn hoist(locals: &[(u32, Ty)]) -> Vec<Stmt> {
    locals
        .iter()
        .map(|(local, ty)| {
            let undefined = match ty {
                Ty::Num => Expr::Num(f64::NAN),
                Ty::Bool => Expr::Bool(false),
            };
            Stmt::Expr(Expr::Set(*local, *ty, Box::new(undefined)))
        })
        .collect()
}

/// JS StringToNumber for the forms scripts use: blank is 0, decimal literals (with
/// exponent, sign, `Infinity`); `None` for hex/octal/binary and non-ASCII text, which
/// are left to boa. Anything else is NaN.
fn string_to_number(s: &str) -> Option<f64> {
    if !s.is_ascii() {
        return None;
    }
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\u{b}');
    if t.is_empty() {
        return Some(0.0);
    }
    match t {
        "Infinity" | "+Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let unsigned = t.trim_start_matches(['+', '-']);
    if unsigned.len() > 1
        && unsigned.starts_with('0')
        && unsigned[1..].starts_with(['x', 'X', 'o', 'O', 'b', 'B'])
    {
        return None;
    }
    let decimal = t.len() - unsigned.len() <= 1
        && unsigned
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        && unsigned.bytes().any(|c| c.is_ascii_digit());
    Some(if decimal {
        t.parse().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    })
}

fn literal_number(kind: &LiteralKind) -> Option<f64> {
    match kind {
        LiteralKind::Num(v) => Some(*v),
        LiteralKind::Int(v) => Some(f64::from(*v)),
        _ => None,
    }
}

fn arith(op: ArithmeticOp, a: Expr, b: Expr) -> Expr {
    let (a, b) = (Box::new(a), Box::new(b));
    match op {
        ArithmeticOp::Add => Expr::Arith(Arith::Add, a, b),
        ArithmeticOp::Sub => Expr::Arith(Arith::Sub, a, b),
        ArithmeticOp::Mul => Expr::Arith(Arith::Mul, a, b),
        ArithmeticOp::Div => Expr::Arith(Arith::Div, a, b),
        ArithmeticOp::Mod => Expr::Host(Host::Rem, vec![*a, *b]),
        // Handled by `Lowerer::exponent`; unreachable through `binary`.
        ArithmeticOp::Exp => Expr::Host(Host::Pow, vec![*a, *b]),
    }
}

fn to_num(e: Expr) -> Expr {
    match e.ty() {
        Ty::Num => e,
        Ty::Bool => Expr::ToNum(Box::new(e)),
    }
}

fn to_bool(e: Expr) -> Expr {
    match e.ty() {
        Ty::Bool => e,
        Ty::Num => Expr::Truthy(Box::new(e)),
    }
}

fn strip_parens(mut e: &Expression) -> &Expression {
    while let Expression::Parenthesized(p) = e {
        e = p.expression();
    }
    e
}

/// Conservative: true when every path through `stmts` ends in a return (or never ends:
/// a loop without a condition that nothing breaks out of).
fn always_returns(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match s {
        Stmt::FnReturn(_) | Stmt::PixelReturn(_) => true,
        Stmt::If(_, a, b) => always_returns(a) && always_returns(b),
        Stmt::Loop {
            cond: None, body, ..
        } => !breaks(body),
        _ => false,
    })
}

/// True when `stmts` may `break` out of the loop they are the body of (nested loops'
/// own breaks excluded).
fn breaks(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match s {
        Stmt::Break => true,
        Stmt::If(_, a, b) => breaks(a) || breaks(b),
        _ => false,
    })
}

fn statement_kind(s: &Statement) -> &'static str {
    match s {
        Statement::ForInLoop(_) => "for-in",
        Statement::ForOfLoop(_) => "for-of",
        Statement::Switch(_) => "switch",
        Statement::Labelled(_) => "labelled statement",
        Statement::Throw(_) => "throw",
        Statement::Try(_) => "try",
        Statement::With(_) => "with",
        Statement::Break(_) => "labelled break",
        Statement::Continue(_) => "labelled continue",
        _ => "statement",
    }
}

fn expression_kind(e: &Expression) -> &'static str {
    match e {
        Expression::ArrayLiteral(_) => "array value",
        Expression::ObjectLiteral(_) => "object literal",
        Expression::FunctionExpression(_) | Expression::ArrowFunction(_) => "function expression",
        Expression::New(_) => "new",
        Expression::TemplateLiteral(_) => "template string",
        Expression::This(_) => "this",
        Expression::Spread(_) => "spread",
        _ => "expression",
    }
}
