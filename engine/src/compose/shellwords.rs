//! Splitting a string `command`/`entrypoint` into words the way compose does
//! (POSIX shell quoting, no expansion): blanks separate words, `'...'` is
//! literal, `"..."` honours `\"`, `\\`, `\$` and `` \` ``, a backslash outside
//! quotes escapes the next character.

pub(crate) fn split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    // A backslash-newline joins lines, as in a shell.
                    Some('\n') => {}
                    Some(n) => word.push(n),
                    None => word.push('\\'),
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => word.push(n),
                        None => return Err(format!("unterminated single quote in {text:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => word.push(n),
                            Some('\n') => {}
                            Some(n) => {
                                word.push('\\');
                                word.push(n);
                            }
                            None => return Err(format!("unterminated double quote in {text:?}")),
                        },
                        Some(n) => word.push(n),
                        None => return Err(format!("unterminated double quote in {text:?}")),
                    }
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Vec<String> {
        split(text).expect("splits")
    }

    #[test]
    fn words() {
        assert_eq!(s("echo hello  world"), ["echo", "hello", "world"]);
        assert_eq!(s("  "), Vec::<String>::new());
        assert_eq!(s(""), Vec::<String>::new());
        assert_eq!(
            s("sh -c 'echo $HOME && ls'"),
            ["sh", "-c", "echo $HOME && ls"]
        );
        assert_eq!(s(r#"echo "a \"b\" \$c \d""#), ["echo", r#"a "b" $c \d"#]);
        assert_eq!(s(r"a\ b c"), ["a b", "c"]);
        assert_eq!(s("x''y \"\""), ["xy", ""]);
        assert_eq!(s("a=\"1 2\"b"), ["a=1 2b"]);
    }

    #[test]
    fn unterminated() {
        assert!(split("echo 'x").is_err());
        assert!(split("echo \"x").is_err());
    }
}
