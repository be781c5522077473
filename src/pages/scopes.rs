//! Scopes in words: what granting each one lets the application do, as
//! the consent page says it. Google's scopes are known by their short name
//! (`drive.file`) or their full URL; OpenID Connect's by their name.

/// Google's scope URLs start with this; the rest is the short name.
const GOOGLE_PREFIX: &str = "https://www.googleapis.com/auth/";

/// Words for a scope a person is asked to grant. A scope this vocabulary
/// does not know is named as it is, marked as the server's own.
pub fn describe_scope(scope: &str) -> String {
    let short = scope.strip_prefix(GOOGLE_PREFIX).unwrap_or(scope);
    match words(short) {
        Some(words) => words.to_owned(),
        None => format!("Use the permission “{scope}” (no description available)"),
    }
}

fn words(short: &str) -> Option<&'static str> {
    Some(match short {
        // OpenID Connect (and the Google names for the same).
        "openid" => "Sign you in with your account",
        "email" | "userinfo.email" => "See your email address",
        "profile" | "userinfo.profile" => "See your basic profile information",
        "address" => "See your postal address",
        "phone" => "See your phone number",
        "offline_access" => "Stay signed in when you are not using the app",
        // Google Drive.
        "drive.file" => {
            "See, edit, create and delete only the Google Drive files used with this app"
        }
        "drive" => "See, edit, create and delete all of your Google Drive files",
        "drive.readonly" => "See and download all your Google Drive files",
        "drive.metadata.readonly" => {
            "See the names, owners and dates of your Google Drive files (not their content)"
        }
        "drive.appdata" => "Keep its own settings in your Google Drive (hidden from you)",
        "drive.activity.readonly" => "See the activity history of your Google Drive files",
        // Gmail.
        "gmail.send" => "Send email on your behalf",
        "gmail.readonly" => "Read your email messages and settings",
        "gmail.modify" => "Read, compose and send email from your Gmail account",
        "gmail.compose" => "Write drafts and send email on your behalf",
        "gmail.labels" => "See and edit your email labels",
        "gmail.metadata" => "See your email's labels and headers (not the messages' text)",
        "gmail.settings.basic" => "See and change your email settings and filters",
        "https://mail.google.com/" => {
            "Read, compose, send and permanently delete all your email in Gmail"
        }
        // Calendar.
        "calendar" => "See, edit, share and delete all your calendars",
        "calendar.events" => "View and edit events on all your calendars",
        "calendar.readonly" => "See and download any calendar you can access",
        "calendar.events.readonly" => "See the events on all your calendars",
        "calendar.settings.readonly" => "See your calendar settings",
        // Docs, Sheets, Slides, Forms.
        "documents" => "See, edit, create and delete your Google Docs documents",
        "documents.readonly" => "See your Google Docs documents",
        "spreadsheets" => "See, edit, create and delete your Google Sheets spreadsheets",
        "spreadsheets.readonly" => "See your Google Sheets spreadsheets",
        "presentations" => "See, edit, create and delete your Google Slides presentations",
        "presentations.readonly" => "See your Google Slides presentations",
        "forms.body" => "See, edit, create and delete your Google Forms",
        "forms.responses.readonly" => "See the responses to your Google Forms",
        // People, tasks, chat.
        "contacts" => "See, edit, download and delete your contacts",
        "contacts.readonly" => "See and download your contacts",
        "contacts.other.readonly" => "See the contacts saved automatically in “Other contacts”",
        "directory.readonly" => "See your organisation's directory of people",
        "tasks" => "Create, edit, organise and delete your tasks",
        "tasks.readonly" => "See your tasks",
        "chat.messages" => "See, send, edit and delete your Google Chat messages",
        "chat.messages.readonly" => "See your Google Chat messages",
        "chat.spaces.readonly" => "See your Google Chat spaces",
        // Administration and other services.
        "admin.directory.user.readonly" => "See the users of your Google Workspace domain",
        "admin.directory.group.readonly" => "See the groups of your Google Workspace domain",
        "cloud-platform" => "See, edit, configure and delete your Google Cloud data",
        "youtube.readonly" => "See your YouTube account",
        "photoslibrary.readonly" => "See your Google Photos library",
        "analytics.readonly" => "See your Google Analytics data",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_scopes_read_the_same_by_short_name_and_by_url() {
        for short in [
            "drive.file",
            "gmail.send",
            "calendar.events.readonly",
            "tasks",
        ] {
            let url = format!("{GOOGLE_PREFIX}{short}");
            assert_eq!(describe_scope(&url), describe_scope(short));
            assert!(
                !describe_scope(short).contains("no description"),
                "{short} has words"
            );
        }
        assert_eq!(
            describe_scope("https://mail.google.com/"),
            "Read, compose, send and permanently delete all your email in Gmail"
        );
    }

    #[test]
    fn an_unknown_scope_is_named_as_it_is() {
        assert_eq!(
            describe_scope("tools:deploy"),
            "Use the permission “tools:deploy” (no description available)"
        );
        // A Google scope outside the vocabulary keeps its full name.
        let odd = format!("{GOOGLE_PREFIX}something.new");
        assert!(describe_scope(&odd).contains(&odd));
    }
}
