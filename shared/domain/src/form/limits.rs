//! Size limits of definitions and answers. They bound storage, screens and the work a
//! request can cause; docs/forms.md lists them for staff.

/// Items in a form, counting those inside sections.
pub const MAX_ITEMS: usize = 200;
/// 様式の名称.
pub const MAX_TITLE_CHARS: usize = 200;
/// Label of a field, heading or section.
pub const MAX_LABEL_CHARS: usize = 200;
/// Text of an explanation block (its label).
pub const MAX_EXPLANATION_CHARS: usize = 4000;
/// 補足説明.
pub const MAX_HELP_CHARS: usize = 1000;
/// 制度の概要.
pub const MAX_OVERVIEW_CHARS: usize = 4000;
/// 問合せ先.
pub const MAX_CONTACT_CHARS: usize = 1000;
pub const MAX_URL_CHARS: usize = 2000;
/// Options of one radio, select or checkbox.
pub const MAX_OPTIONS: usize = 100;
pub const MAX_OPTION_VALUE_CHARS: usize = 100;
/// Longest answer of a one-line text field (and the default `max_length`).
pub const MAX_TEXT_CHARS: u32 = 1000;
/// Longest answer of a multi-line text field (and its default `max_length`).
pub const MAX_MULTILINE_CHARS: u32 = 10_000;
/// Largest `max_file_mb` of an attachment field.
pub const MAX_FILE_MB: u32 = 10;
/// Largest `max_files` of an attachment field.
pub const MAX_FILES: u32 = 20;
/// Largest `max_total_mb` of a form.
pub const MAX_TOTAL_MB: u32 = 100;
/// Nesting of `not`/`all`/`any` in one condition.
pub const MAX_CONDITION_DEPTH: usize = 4;
/// Conditions inside one `all`/`any`, and values in one `one_of`.
pub const MAX_CONDITION_TERMS: usize = 20;
/// Largest magnitude of a number answer or bound: integers stay exact in JavaScript.
pub const MAX_NUMBER_ABS: f64 = 1e15;
/// One part of a name (姓, 名, or their フリガナ).
pub const MAX_NAME_PART_CHARS: usize = 100;
/// The address line of an address answer.
pub const MAX_ADDRESS_CHARS: usize = 200;
/// The building line (方書) of an address answer.
pub const MAX_BUILDING_CHARS: usize = 100;
/// An e-mail address (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Raw input of short typed values (phone, postal code, date, My Number, number).
pub const MAX_SHORT_INPUT_CHARS: usize = 64;
/// Unknown answer keys reported one by one before the rest are summed up in one error.
pub const MAX_UNKNOWN_KEY_ERRORS: usize = 20;
/// Lines (明細) of a form's fee.
pub const MAX_FEE_LINES: usize = 20;
/// Label of a fee line.
pub const MAX_FEE_LABEL_CHARS: usize = 100;
