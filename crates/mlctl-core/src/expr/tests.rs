//! What Argo's `shouldExecute` (govaluate v3.0.1-0.20250325060307-7625b7f8c03d, the version
//! argo-workflows' go.mod pins) returns for each text. Sources are cited per group:
//!
//! - `when_test.go`: argo-workflows `workflow/controller/when_test.go` (`TestShouldExecute`);
//! - `steps.go`: argo-workflows `workflow/controller/steps.go` (`shouldExecute`: variables
//!   become strings, non-boolean results are errors);
//! - `examples/...`: argo-workflows example workflows;
//! - `eval_test.go`, `evalFailure_test.go`, `parseFailure_test.go`: govaluate's
//!   `evaluation_test.go`, `evaluationFailure_test.go`, `parsingFailure_test.go` (constant
//!   inputs only: Argo passes no parameters);
//! - `evaluationStage.go`, `parsing.go`, `lexerState.go`, `stagePlanner.go`: govaluate's
//!   sources, for cases derived by reading them.

use proptest::prelude::*;

use super::{ExprError, MAX_DEPTH, go_float, parse, should_execute};

#[derive(Debug)]
enum Want {
    T,
    F,
    /// An error whose message contains this text.
    E(&'static str),
}
use Want::*;

fn check(cases: &[(&str, Want)]) {
    let mut failures = Vec::new();
    for (text, want) in cases {
        let got = should_execute(text);
        let ok = match (want, &got) {
            (T, Ok(true)) | (F, Ok(false)) => true,
            (E(part), Err(ExprError { message, .. })) => message.contains(part),
            _ => false,
        };
        if !ok {
            failures.push(format!("{text:?}: want {want:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn argo_when_test_true_and_false() {
    // when_test.go: trueExpressions and falseExpressions, verbatim.
    check(&[
        ("foo == foo", T),
        ("'ref/branch/master' == 'ref/branch/master'", T),
        ("foo != bar", T),
        ("1 == 1", T),
        ("1 != 2", T),
        ("1 < 2", T),
        ("1 <= 1", T),
        ("1/2 == 0.5", T),
        ("a < b", T),
        ("(foo == bar) || (foo == foo)", T),
        ("(1 > 0) && (1 < 2)", T),
        ("Error in (Failed, Error)", T),
        ("!(Succeeded in (Failed, Error))", T),
        ("true == true", T),
        ("foo != foo", F),
        ("'ref/branch/master' != 'ref/branch/master'", F),
        ("foo == bar", F),
        ("1 != 1", F),
        ("1 == 2", F),
        ("1 > 2", F),
        ("1 <= 0", F),
        ("1/2 != 0.5", F),
        ("a > b", F),
        ("(foo == bar) || (bar == foo)", F),
        ("(1 > 0) && (11 < 2)", F),
        ("Succeeded in (Failed, Error)", F),
        ("!(Error in (Failed, Error))", F),
        ("false == true", F),
    ]);
}

#[test]
fn argo_examples_after_substitution() {
    check(&[
        // examples/coinflip.yaml: "{{steps.flip-coin.outputs.result}} == heads"
        ("heads == heads", T),
        ("tails == heads", F),
        // examples/conditionals-complex.yaml: "( ... == heads ) && ( ... == tails )"
        ("( heads == heads ) && ( tails == tails )", T),
        // examples/conditionals-complex.yaml: "{{steps.flip-again.outputs.result}} =~ hea"
        ("heads =~ hea", T),
        ("tails =~ hea", F),
        // examples/exit-handlers.yaml: "{{workflow.status}} == Succeeded" / "!= Succeeded"
        ("Succeeded == Succeeded", T),
        ("Failed != Succeeded", T),
        // examples/conditionals.yaml: "{{inputs.parameters.should-print}} == true" — the
        // word `true` is a boolean and the substituted `true` too
        ("true == true", T),
        ("false == true", F),
        // examples/fibonacci-seq-conditional-param.yaml: "N != 1 && N != 2"
        ("3 != 1 && 3 != 2", T),
        ("2 != 1 && 2 != 2", F),
        // examples/recursive-for-loop.yaml: "{{...counter}} < {{inputs.parameters.limit}}"
        ("3 < 10", T),
        ("10 < 10", F),
        // examples/intermediate-parameters.yaml: "{{...approve}} == YES"
        ("YES == YES", T),
        // mlctl's quickstart gate: "{{steps.evaluate.outputs.accuracy}} > {{params.min-accuracy}}"
        ("0.91 > 0.85", T),
        ("0.8 > 0.85", F),
    ]);
}

#[test]
fn numbers_versus_strings() {
    check(&[
        // evaluationStage.go gtStage: two float64s compare as numbers.
        ("0.9 > 0.85", T),
        ("10 > 9", T),
        ("0.90 == 0.9", T),
        ("1 == 1.0", T),
        (".5 == 0.5", T),
        ("5. == 5", T),
        ("0x1F == 31", T), // parsing.go: hex literals become float64
        ("0xff == 255", T),
        // evaluationStage.go comparatorTypeCheck: a string and a number cannot be ordered;
        // the message names the left value whichever side is wrong.
        (
            "\"0.9\" > 0.85",
            E("value '0.9' cannot be used with the comparator '>'"),
        ),
        (
            "abc > 1",
            E("value 'abc' cannot be used with the comparator '>', it is not a number"),
        ),
        (
            "1 > abc",
            E("value '1' cannot be used with the comparator '>'"),
        ),
        ("1 <= '1'", E("cannot be used with the comparator '<='")),
        // evalFailure_test.go "GT literal bool to literal bool": booleans cannot be ordered.
        ("true > true", E("cannot be used with the comparator '>'")),
        // evaluationStage.go equalStage: reflect.DeepEqual, different types are unequal.
        ("\"0.9\" == 0.9", F),
        ("'1' == 1", F),
        ("'1' != 1", T),
        ("true == 'true'", F),
        // Two strings order byte-wise (evaluationStage.go gtStage on strings).
        ("abc < abd", T),
        ("b > a", T),
        ("Z < a", T),
        ("'10' < '9'", T),
        ("é > z", T),
        // steps.go: bare words become strings, so a number-looking word is not a word.
        ("heads == 'heads'", T),
        ("heads == \"heads\"", T),
        ("[heads] == heads", T), // parsing.go: `[...]` is an escaped variable
        ("[a b] == 'a b'", T),
        ("[] == ''", T),
        ("'' == \"\"", T),
    ]);
}

#[test]
fn bare_words_with_operator_characters() {
    check(&[
        // parsing.go: a word stops at `-`, which is then the subtraction of two strings
        // (evaluationStage.go: MINUS needs float64 on both sides).
        (
            "text-classifier == text-classifier",
            E("value 'text' cannot be used with the modifier '-', it is not a number"),
        ),
        ("'text-classifier' == 'text-classifier'", T),
        // parsing.go: a word with a dot is an accessor; a lower-case field is rejected
        // at parse time (parseFailure_test.go "Unexported parameter access").
        (
            "model.onnx == model.onnx",
            E("unable to access unexported field 'onnx' in token 'model.onnx'"),
        ),
        ("'model.onnx' == 'model.onnx'", T),
        // ... an exported one parses and fails at evaluation: Argo passes no parameters
        // (EvaluableExpression.go Eval with nil parameters; evaluationStage.go accessor).
        ("v1.2 == v1.2", E("no parameter 'v1' found")),
        ("Model.Onnx == x", E("no parameter 'Model' found")),
        ("true || a.B", T), // the accessor is never evaluated (short-circuit)
        ("foo.Bar.", E("hanging accessor")), // parseFailure_test.go "Hanging accessor"
        ("my_step == my_step", T), // `_` continues a word
        ("_x == _x", E("invalid token: '_'")), // ... but does not start one
        // A date written bare is arithmetic: 2024 - 1 - 1.
        ("2024-01-01 == 2022", T),
        // An unsubstituted template: Argo adds the quoting hint (steps.go).
        (
            "{{steps.a.outputs.result}} == heads",
            E("hint: try wrapping the affected expression in quotes"),
        ),
        (
            "127.0.0.1 == x",
            E("unable to parse numeric value '127.0.0.1'"),
        ), // parseFailure_test.go "Multiple radix"
        ("1.2.3 == 1.2.3", E("unable to parse numeric value")),
        ("1e3 == 1000", E("unexpected word 'e3' after number 1")),
    ]);
}

#[test]
fn boolean_logic_and_short_circuits() {
    check(&[
        ("true", T),
        ("false", F),
        ("!true", F),
        ("!false", T),
        ("!(heads == heads)", F),
        ("!!true", E("invalid token: '!!'")), // parsing.go reads `!!` as one symbol
        ("! !true", E("invalid token: '!'")), // the second `!` is not a prefix after a prefix
        // eval_test.go "Logical operator reordering (#30)", "(#44)": && binds tighter.
        ("true && true || true && false", T),
        ("false || true && true || false", T),
        ("false && true || true", T),
        ("true || false && false", T),
        ("(true || false) && false", F),
        // EvaluableExpression.go evaluateStage: `left == false` / `left == true`
        // short-circuit before type checks; a non-boolean left side is an error.
        ("false && abc", F),
        ("true || 5", T),
        (
            "abc && false",
            E("value 'abc' cannot be used with the logical operator '&&', it is not a bool"),
        ),
        (
            "5 || true",
            E("value '5' cannot be used with the logical operator '||'"),
        ),
        (
            "true && abc",
            E("value 'abc' cannot be used with the logical operator '&&'"),
        ),
        (
            "false || 'x'",
            E("value 'x' cannot be used with the logical operator '||'"),
        ),
        // steps.go: the syntax check after the variable-to-string rewrite rejects a prefix
        // before a string (lexerState.go: PREFIX may not precede STRING).
        (
            "!heads",
            E("unexpected string 'heads' after prefix operator '!'"),
        ),
        ("!'x'", E("unexpected string 'x' after prefix operator '!'")),
        // evaluationStage.go invertStage: `!` needs a bool.
        ("!1", E("value '1' cannot be used with the prefix '!'")),
        ("!(1)", E("value '1' cannot be used with the prefix '!'")),
    ]);
}

#[test]
fn arithmetic_and_precedence() {
    check(&[
        // eval_test.go, compared with `==` to make them boolean.
        ("1 - 2 - 4 - 8 == -13", T), // "Order of non-commutative ... (additive)"
        ("1 * 4 / 2 * 8 == 16", T),  // "... (multiplicative)"
        ("5 + 10 * 2 == 25", T),     // "Multiplicative/additive order"
        ("1 + 5 ** 3 % 2 * 5 == 6", T), // "Exponent precedence"
        ("50 << 1 & 90 == 64", T),   // stagePlanner.go: bitwise binds tighter than `==`
        ("(50 << 1 & 90) == 64", T), // "Bit shift precedence"
        ("(90 + 50 << 1 * 5) == 4480", T), // "Bit shift precedence amongst non-bitwise"
        ("(100 ^ (23 * (2 | 5))) == 197", T),
        ("(20 & 30 & 50) == 16", T),
        ("~10 == -11", T),        // "Single BITWISE NOT"
        ("-1 < 0", T),            // "Sign prefix comparison"
        ("2 ** 3 ** 2 == 64", T), // stagePlanner.go reorderStages: left-associative
        ("-2 ** 2 == 4", T),      // the prefix binds to one value
        ("10 % 3 == 1", T),
        ("1 / 0 > 1000", T),       // float64 division: +Inf
        ("(0 / 0) == (0 / 0)", F), // NaN is not DeepEqual to itself
        ("(0 / 0) < 1", F),
        ("1 - -1 == 2", T),
        ("1--1 == 2", E("invalid token: '--'")),
        // eval_test.go concatenation cases: `+` with a string concatenates `%v` texts.
        ("'foo' + 'bar' == 'foobar'", T),
        ("'foo' + 123 == 'foo123'", T),
        ("123 + 'bar' == '123bar'", T),
        ("'foo' + true == 'footrue'", T),
        ("a + 1000000 == 'a1e+06'", T), // Go's %v switches to an exponent at 1e6
        ("a + 123456 == a123456", T),
        ("a + 0.00001 == 'a1e-05'", T),
        (
            "true + 1",
            E("value 'true' cannot be used with the modifier '+', it is not a number"),
        ), // evalFailure_test.go "PLUS literal number to literal bool"
        ("a * 2", E("value 'a' cannot be used with the modifier '*'")),
        ("2 * a", E("value 'a' cannot be used with the modifier '*'")),
        (
            "-a == 1",
            E("unexpected string 'a' after prefix operator '-'"),
        ),
        (
            "-(a) == 1",
            E("value 'a' cannot be used with the prefix '-'"),
        ),
    ]);
}

#[test]
fn ternaries_lists_and_regexes() {
    check(&[
        // eval_test.go ternary cases, made boolean.
        ("(true ? 10) == 10", T),
        ("(false ? 10) == (false ? 20)", T), // both nil: DeepEqual(nil, nil)
        ("(false ? 35.50 : 50) == 50", T),
        ("(true ? 1 : 5) < 10", T),
        ("true ? 35.50 > 10", T),
        (
            "true ? (false ? 1 : (false ? 2 : 3)) : (false ? 4 : 5)",
            E("got '3'"),
        ),
        ("true ?? true ? 100 + 200 : 400", E("got '300'")),
        ("(1 ?? 2) == 1", T),
        (
            "10 ? true",
            E("value '10' cannot be used with the ternary operator '?', it is not a bool"),
        ), // evalFailure_test.go "Ternary with number"
        ("false ? true", E("got '<nil>'")),
        // eval_test.go "Array membership literals" and Argo's when_test.go.
        ("1 in (1, 2, 3)", T),
        ("!(1 in (1, 2, 3))", F),
        ("4 in (1, 2, 3)", F),
        ("heads IN (heads, tails)", T),
        ("'1' in (1, 2)", F),
        (
            "1 in (1)",
            E("value '1' cannot be used with the comparator 'in'"),
        ), // evalFailure_test.go "IN non-array numeric"
        ("1 in 'foo'", E("cannot be used with the comparator 'in'")),
        ("1 in ((1, 2), 3)", T), // separatorStage appends to a left-hand list
        ("(1, 2) in (3, (1, 2))", E("comparing uncomparable type")), // Go panics comparing slices
        ("(1, 2) == (1, 2)", T),
        ("1, 2", E("got '[1 2]'")),
        // eval_test.go REQ/NREQ cases; unanchored matching.
        ("'foobar' =~ 'oba'", T),
        ("'foo' !~ 'bar'", T),
        ("foobar =~ '^foo'", T),
        ("foobar =~ '^bar'", F),
        ("heads =~ '^(heads|tails)$'", T),
        ("abc123 =~ '\\\\d+'", T), // the string literal `\\d+` holds the pattern `\d+`
        (
            "1 =~ 'a'",
            E("value '1' cannot be used with the comparator '=~'"),
        ),
        (
            "a =~ 1",
            E("value '1' cannot be used with the comparator '=~'"),
        ),
        ("foo =~ '[abc'", E("invalid regular expression '[abc'")), // parseFailure_test.go: constant pattern compiled at parse time
        ("foo =~ [[abc]", E("invalid regular expression '[abc'")), // compiled after Argo's rewrite too
        (
            "foo =~ ('[abc')",
            E("unable to compile regexp pattern '[abc'"),
        ), // not a constant: at evaluation
    ]);
}

#[test]
fn quoted_dates_are_numbers() {
    check(&[
        // eval_test.go date comparisons (parsing.go tryParseTime).
        ("'2014-01-02 14:12:22' == '2014-01-02 14:12:22'", T),
        ("'2014-01-02 14:12:22' > '2014-01-02 12:12:22'", T),
        ("'2014-01-02 14:12:22' < '2014-01-02 11:12:22'", F),
        ("'2024-01-01' == 1704067200", T),
        ("'2024-01-01' > 5", T), // a number now, so no type error
        ("'foo' + '02/05/1970' == 'foobar'", F), // not a layout: stays a string
        ("'2024-01-01' == 2024-01-01", F),
        // lexerState.go: a TIME may not follow a modifier, nor be followed by `?`.
        ("1 + '2024-01-01'", E("unexpected time")),
        ("'2024-01-01' ? 1", E("unexpected ternary operator")),
    ]);
}

#[test]
fn syntax_errors() {
    check(&[
        // parseFailure_test.go, verbatim inputs.
        ("1 = 1", E("invalid token: '='")),
        ("1 === 1", E("invalid token: '==='")),
        ("true &&& false", E("invalid token: '&&&'")),
        ("10 > 5 +", E("unexpected end of expression")),
        ("10 + 5 >", E("unexpected end of expression")),
        ("10 > 5 &&", E("unexpected end of expression")),
        ("true ?", E("unexpected end of expression")),
        ("'wat' =~", E("unexpected end of expression")),
        (" / =~", E("unexpected")),
        ("> 10", E("unexpected comparator '>' after the start")),
        ("+ 5", E("unexpected operator '+' after the start")),
        ("10 10", E("unexpected number 10 after number 10")),
        ("'foo' 'foo'", E("unexpected string")),
        ("10 > < 10", E("unexpected comparator '<'")),
        (" ) ( arg2", E("unexpected ')'")),
        ("[foo bar", E("unclosed parameter bracket")),
        ("foo == 'responseTime", E("unclosed string literal")),
        ("10 > (1 + 50", E("unbalanced parenthesis")),
        ("foobar()", E("undefined function 'foobar'")),
        ("0x", E("unexpected word 'x' after number 0")),
        ("0x > 0", E("unable to parse hex value")),
        ("0x1.1", E("unexpected number 0.1")),
        ("0x12g1", E("unexpected word 'g1'")),
        // Argo's shouldExecute: an empty `when` is true, a blank one is not a valid
        // expression (no tokens: lexerState.go UNKNOWN is not an end state).
        ("", T),
        ("   ", E("unexpected end of expression")),
        ("()", E("got '<nil>'")),
        ("(1 == )", F), // lexerState.go lets `)` follow a comparator; the operand is nil
        (
            "(abc > )",
            E("value 'abc' cannot be used with the comparator '>'"),
        ),
        // stagePlanner.go stops after the first complete expression.
        ("(true) false", T),
        ("(true)) || ((false)", T),
        (
            "a ? , b",
            E("unexpected separator ',' where a value was expected"),
        ),
        ("'it\\'s' == 'it\\'s'", T), // a backslash escapes a quote
        ("\"it's\" == x", E("unclosed string literal")), // either quote ends a string
        ("\"a' == 'b\"", F),         // ... so this is "a" == "b"
        ("a \\", E("a backslash at the end escapes nothing")),
        ("1 \\=\\= 1", T), // parsing.go readUntilFalse: escapes work in operators too
        ("heads == heads )", E("unbalanced parenthesis")),
    ]);
}

#[test]
fn out_of_range_numbers_are_errors() {
    // strconv.ParseFloat returns ErrRange for values beyond float64 (parsing.go reports it).
    let huge = format!("1{} > 1", "0".repeat(400));
    assert!(
        should_execute(&huge)
            .unwrap_err()
            .message
            .contains("unable to parse numeric value")
    );
    let tiny = format!("0.{}1 < 1", "0".repeat(400));
    assert_eq!(should_execute(&tiny), Ok(true));
}

#[test]
fn error_offsets_are_character_offsets() {
    let err = should_execute("é == é && abc > 1").unwrap_err();
    assert_eq!(err.offset, 14, "{err}");
    assert_eq!(
        err.to_string(),
        "value 'abc' cannot be used with the comparator '>', it is not a number (at character 15)"
    );
    let err = should_execute("héllo ==").unwrap_err();
    assert_eq!(err.offset, 8);
    let err = should_execute("a == 'b").unwrap_err();
    assert_eq!(err.offset, 5);
    let err = should_execute("1 == 1 && {{x}}").unwrap_err();
    assert_eq!(err.offset, 10);
}

#[test]
fn parsed_expressions_evaluate_repeatedly() {
    let expr = parse("0.91 > 0.85 && heads =~ '^h'").unwrap();
    assert_eq!(expr.eval(), Ok(true));
    assert_eq!(expr.eval(), Ok(true));
    let cloned = expr.clone();
    assert_eq!(cloned.eval(), Ok(true));
}

#[test]
fn nesting_is_bounded() {
    let ok = format!(
        "{}true{}",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert_eq!(should_execute(&ok), Ok(true));
    let deep = format!(
        "{}true{}",
        "(".repeat(MAX_DEPTH + 10),
        ")".repeat(MAX_DEPTH + 10)
    );
    assert!(
        should_execute(&deep)
            .unwrap_err()
            .message
            .contains("nested more than")
    );
    let long = vec!["true"; MAX_DEPTH + 10].join(" && ");
    assert!(
        should_execute(&long)
            .unwrap_err()
            .message
            .contains("nested more than")
    );
    let fine = vec!["true"; MAX_DEPTH / 2].join(" && ");
    assert_eq!(should_execute(&fine), Ok(true));
}

#[test]
fn go_float_formatting() {
    // strconv.FormatFloat(f, 'g', -1, 64), which fmt's %v uses.
    for (value, want) in [
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (0.5, "0.5"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1e21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (-2.5, "-2.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (f64::NAN, "NaN"),
    ] {
        assert_eq!(go_float(value), want, "{value:e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary text never panics the parser or the evaluator.
    #[test]
    fn never_panics_on_arbitrary_text(text in any::<String>()) {
        if let Ok(expr) = parse(&text) {
            let _ = expr.eval();
        }
    }

    /// Text made of the language's own pieces reaches the planner and the evaluator far
    /// more often than random characters do; it must not panic either, and an error's
    /// offset stays within the text.
    #[test]
    fn never_panics_on_token_soup(parts in prop::collection::vec(prop::sample::select(vec![
        "(", ")", "!", "-", "~", "+", "*", "**", "/", "%", "&", "|", "^", "<<", ">>",
        "==", "!=", "<", ">", "<=", ">=", "=~", "!~", "in", "&&", "||", "?", ":", "??", ",",
        "1", "0.5", "0x1F", "'a'", "\"b\"", "heads", "true", "false", "[x y]", "A.B",
        "'2024-01-01'", "'^h'", "'['", " ", "\\",
    ]), 0..24)) {
        let text: String = parts.concat();
        let len = text.chars().count();
        match parse(&text) {
            Ok(expr) => {
                if let Err(e) = expr.eval() {
                    prop_assert!(e.offset <= len, "{text:?}: {e:?}");
                }
            }
            Err(e) => prop_assert!(e.offset <= len, "{text:?}: {e:?}"),
        }
    }
}
