//! The four operations. A result must be a finite number: division by zero, overflow
//! to infinity and NaN are tool execution errors (MCP tools "Error Handling").

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Add,
    Subtract,
    Multiply,
    Divide,
}

/// Why a calculation has no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalcError {
    #[error("Division by zero is undefined")]
    DivisionByZero,
    #[error("The result of {op} {a} and {b} is not a finite number")]
    NotFinite { op: Operation, a: f64, b: f64 },
}

impl Operation {
    pub const ALL: [Operation; 4] = [Self::Add, Self::Subtract, Self::Multiply, Self::Divide];

    /// The wire name (`operation` argument).
    pub fn name(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Subtract => "subtract",
            Self::Multiply => "multiply",
            Self::Divide => "divide",
        }
    }

    /// The scope a caller needs for this operation.
    pub fn scope(self) -> &'static str {
        match self {
            Self::Add => "op:add",
            Self::Subtract => "op:sub",
            Self::Multiply => "op:mult",
            Self::Divide => "op:div",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == s)
    }

    pub fn apply(self, a: f64, b: f64) -> Result<f64, CalcError> {
        let r = match self {
            Self::Add => a + b,
            Self::Subtract => a - b,
            Self::Multiply => a * b,
            Self::Divide if b == 0.0 => return Err(CalcError::DivisionByZero),
            Self::Divide => a / b,
        };
        if r.is_finite() {
            Ok(r)
        } else {
            Err(CalcError::NotFinite { op: self, a, b })
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_operations() {
        assert_eq!(Operation::Add.apply(5.0, 8.0), Ok(13.0));
        assert_eq!(Operation::Subtract.apply(5.0, 8.0), Ok(-3.0));
        assert_eq!(Operation::Multiply.apply(1.5, 4.0), Ok(6.0));
        assert_eq!(Operation::Divide.apply(1.0, 4.0), Ok(0.25));
    }

    #[test]
    fn division_by_zero_and_overflow_are_errors() {
        assert_eq!(
            Operation::Divide.apply(1.0, 0.0),
            Err(CalcError::DivisionByZero)
        );
        assert_eq!(
            Operation::Divide.apply(1.0, -0.0),
            Err(CalcError::DivisionByZero)
        );
        assert!(matches!(
            Operation::Multiply.apply(f64::MAX, 2.0),
            Err(CalcError::NotFinite { .. })
        ));
        assert!(matches!(
            Operation::Add.apply(f64::MAX, f64::MAX),
            Err(CalcError::NotFinite { .. })
        ));
    }

    #[test]
    fn parse_names() {
        assert_eq!(Operation::parse("divide"), Some(Operation::Divide));
        assert_eq!(Operation::parse("Divide"), None);
        assert_eq!(Operation::parse("pow"), None);
    }
}
