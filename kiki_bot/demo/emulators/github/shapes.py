"""The JSON bodies as GitHub sends them (checked by tests/test_conformance_openapi.py)."""

from __future__ import annotations

import base64
import zlib
from typing import Any
from urllib.parse import quote

from ..server import Commit, git_blob_sha
from .state import HTML_URL, Comment, Issue, Label, Release, Repo, iso, node_id, reactions


REPO_URLS = {
    "archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}", "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}", "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}", "compare_url": "/compare/{base}...{head}", "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors", "deployments_url": "/deployments", "downloads_url": "/downloads",
    "events_url": "/events", "forks_url": "/forks", "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}", "git_tags_url": "/git/tags{/sha}", "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}", "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}", "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}",
    "languages_url": "/languages", "merges_url": "/merges", "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}", "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}", "stargazers_url": "/stargazers", "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers", "subscription_url": "/subscription", "tags_url": "/tags",
    "teams_url": "/teams", "trees_url": "/git/trees{/sha}",
}
"""A repository's URL templates, after its API URL, as GitHub lists them."""


class Shapes:
    """GitHub's JSON shapes of users, repositories, issues, pulls, commits, refs, contents, releases."""

    def _user(self, login: str) -> dict[str, Any]:
        """A simple-user as GitHub embeds one (owner, author, sender): node id, avatar and URL templates."""
        uid, kind = zlib.crc32(login.encode()), "Bot" if login.endswith("[bot]") else "User"
        url = f"{self.base_url}/users/{quote(login)}"
        html = f"{HTML_URL}/apps/{login.removesuffix('[bot]')}" if kind == "Bot" else f"{HTML_URL}/{login}"
        return {
            "login": login, "id": uid, "node_id": node_id(kind, uid), "gravatar_id": "",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4", "url": url, "html_url": html,
            "followers_url": f"{url}/followers", "following_url": f"{url}/following{{/other_user}}",
            "gists_url": f"{url}/gists{{/gist_id}}", "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{url}/subscriptions", "organizations_url": f"{url}/orgs",
            "repos_url": f"{url}/repos", "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events", "type": kind, "user_view_type": "public",
            "site_admin": False,
        }

    def _repo_url(self, repo: Repo) -> str:
        return f"{self.base_url}/repos/{repo.full_name}"

    def _repo_json(self, repo: Repo) -> dict[str, Any]:
        """The full repository (its creation is its first commit, its last push the default branch's head)."""
        url, html = self._repo_url(repo), f"{HTML_URL}/{repo.full_name}"
        log = repo.history.first_parent_log(repo.branches[repo.default_branch])
        created, pushed = iso(log[-1].date), iso(log[0].date)
        open_issues = sum(issue.state == "open" for issue in repo.issues.values())
        return {
            "id": repo.id, "node_id": node_id("Repository", repo.id), "name": repo.full_name.split("/")[1],
            "full_name": repo.full_name, "private": repo.private, "owner": self._user(repo.owner),
            "html_url": html, "description": None, "fork": False, "url": url,
            **{key: url + suffix for key, suffix in REPO_URLS.items()},
            "created_at": created, "updated_at": pushed, "pushed_at": pushed,
            "git_url": f"git://github.com/{repo.full_name}.git", "ssh_url": f"git@github.com:{repo.full_name}.git",
            "clone_url": f"{html}.git", "svn_url": html, "homepage": None, "size": 0, "language": None,
            "stargazers_count": 0, "watchers_count": 0, "watchers": 0, "forks_count": 0, "forks": 0,
            "has_issues": True, "has_projects": True, "has_downloads": True, "has_wiki": True, "has_pages": False,
            "has_discussions": False, "mirror_url": None, "archived": False, "disabled": False, "license": None,
            "open_issues_count": open_issues, "open_issues": open_issues, "allow_forking": True,
            "is_template": False, "web_commit_signoff_required": False, "topics": [],
            "visibility": "private" if repo.private else "public", "default_branch": repo.default_branch,
            "network_count": 0, "subscribers_count": 0,
        }

    def _association(self, repo: Repo, login: str) -> str:
        if login == repo.owner:
            return "OWNER"
        return "COLLABORATOR" if repo.permissions.get(login, "none") != "none" else "NONE"

    def _label_json(self, repo: Repo, label: Label) -> dict[str, Any]:
        label_id = zlib.crc32(f"{repo.full_name}:{label.name}".encode())
        return {
            "id": label_id,
            "node_id": node_id("Label", label_id),
            "name": label.name,
            "color": label.color,
            "description": label.description,
            "default": False,
            "url": f"{self._repo_url(repo)}/labels/{quote(label.name)}",
        }

    def _issue_json(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        url = f"{self._repo_url(repo)}/issues/{issue.number}"
        kind = "pull" if issue.pull else "issues"
        data = {
            "id": issue.id,
            "node_id": node_id("PullRequest" if issue.pull else "Issue", issue.id),
            "number": issue.number,
            "url": url,
            "repository_url": self._repo_url(repo),
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "timeline_url": f"{url}/timeline",
            "html_url": f"{HTML_URL}/{repo.full_name}/{kind}/{issue.number}",
            "title": issue.title,
            "body": issue.body,
            "user": self._user(issue.user),
            "labels": [self._label_json(repo, repo.labels[label]) for label in issue.labels],
            "state": issue.state,
            "state_reason": issue.state_reason,
            "locked": False,
            "active_lock_reason": None,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": len(issue.comments),
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": iso(issue.closed_at),
            "author_association": self._association(repo, issue.user),
            "performed_via_github_app": None,
            "reactions": reactions(url),
        }
        if issue.pull:
            html = data["html_url"]
            data["draft"] = issue.pull.draft
            data["pull_request"] = {
                "url": f"{self._repo_url(repo)}/pulls/{issue.number}",
                "html_url": html,
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "merged_at": iso(issue.pull.merged_at),
            }
        return data

    def _comment_json(self, repo: Repo, issue: Issue, comment: Comment) -> dict[str, Any]:
        issue_json = self._issue_json(repo, issue)
        url = f"{self._repo_url(repo)}/issues/comments/{comment.id}"
        return {
            "id": comment.id,
            "node_id": node_id("IssueComment", comment.id),
            "url": url,
            "html_url": f"{issue_json['html_url']}#issuecomment-{comment.id}",
            "issue_url": issue_json["url"],
            "body": comment.body,
            "user": self._user(comment.user),
            "created_at": iso(comment.created_at),
            "updated_at": iso(comment.updated_at),
            "author_association": self._association(repo, comment.user),
            "performed_via_github_app": None,
            "reactions": reactions(url),
        }

    def _pull_json(self, repo: Repo, issue: Issue, full: bool = True) -> dict[str, Any]:
        """A pull request; a list (`full=False`) carries GitHub's pull-request-simple, without the merge
        state, the counts and `merged_by`, exactly as the real list does."""
        assert issue.pull is not None
        pull, issue_json = issue.pull, self._issue_json(repo, issue)
        url = f"{self._repo_url(repo)}/pulls/{issue.number}"
        head_sha = repo.branches.get(pull.head, pull.head_sha)

        def side(ref: str, sha: str | None) -> dict[str, Any]:
            return {"ref": ref, "sha": sha, "label": f"{repo.owner}:{ref}", "user": self._user(repo.owner),
                    "repo": self._repo_json(repo)}

        shared = ("id", "node_id", "number", "html_url", "title", "body", "user", "labels", "state", "locked",
                  "active_lock_reason", "assignee", "assignees", "milestone", "created_at", "updated_at",
                  "closed_at", "author_association", "draft")
        links = {"self": url, "html": issue_json["html_url"], "issue": issue_json["url"],
                 "comments": issue_json["comments_url"], "review_comments": f"{url}/comments",
                 "review_comment": f"{self._repo_url(repo)}/pulls/comments{{/number}}",
                 "commits": f"{url}/commits", "statuses": f"{self._repo_url(repo)}/statuses/{head_sha}"}
        data = {key: issue_json[key] for key in shared} | {
            "url": url,
            "issue_url": issue_json["url"],
            "comments_url": issue_json["comments_url"],
            "diff_url": f"{issue_json['html_url']}.diff",
            "patch_url": f"{issue_json['html_url']}.patch",
            "commits_url": links["commits"],
            "review_comments_url": links["review_comments"],
            "review_comment_url": links["review_comment"],
            "statuses_url": links["statuses"],
            "_links": {name: {"href": href} for name, href in links.items()},
            "head": side(pull.head, head_sha),
            "base": side(pull.base, repo.branches.get(pull.base)),
            "requested_reviewers": [],
            "requested_teams": [],
            "merged_at": iso(pull.merged_at),
            "merge_commit_sha": pull.merge_commit_sha,
            "auto_merge": None,
        }
        if not full:
            return data
        return data | {
            "merged": pull.merged_at is not None,
            "mergeable": issue.state == "open" or None,
            "rebaseable": issue.state == "open" or None,
            "mergeable_state": "clean" if issue.state == "open" else "unknown",
            "merged_by": self._user(issue.user) if pull.merged_at else None,
            "maintainer_can_modify": False,
            "comments": len(issue.comments),
            "review_comments": 0,
            "commits": 1,
            "additions": 0,
            "deletions": 0,
            "changed_files": 0,
        }

    def _person(self, commit: Commit) -> dict[str, Any]:
        return {"name": commit.author, "email": f"{commit.author}@users.noreply.github.com", "date": iso(commit.date)}

    def _parents(self, repo: Repo, commit: Commit) -> list[dict[str, Any]]:
        return [{"sha": sha, "url": f"{self._repo_url(repo)}/commits/{sha}",
                 "html_url": f"{HTML_URL}/{repo.full_name}/commit/{sha}"} for sha in commit.parents]

    def _commit_json(self, repo: Repo, commit: Commit) -> dict[str, Any]:
        """A git commit object (what the Contents API answers with)."""
        return {
            "sha": commit.sha,
            "url": f"{self._repo_url(repo)}/git/commits/{commit.sha}",
            "html_url": f"{HTML_URL}/{repo.full_name}/commit/{commit.sha}",
            "message": commit.message,
            "author": self._person(commit),
            "committer": self._person(commit),
            "parents": self._parents(repo, commit),
        }

    def _rest_commit_json(self, repo: Repo, commit: Commit) -> dict[str, Any]:
        """A commit as the REST API shows one (branches, compare): the git commit inside, GitHub users outside."""
        url = f"{self._repo_url(repo)}/commits/{commit.sha}"
        git = self._git_commit_json(repo, commit)
        return {
            "sha": commit.sha,
            "node_id": node_id("Commit", commit.sha),
            "url": url,
            "html_url": git["html_url"],
            "comments_url": f"{url}/comments",
            "commit": {"url": git["url"], "author": git["author"], "committer": git["committer"],
                       "message": commit.message, "comment_count": 0, "tree": git["tree"],
                       "verification": git["verification"]},
            "author": self._user(commit.author),
            "committer": self._user(commit.author),
            "parents": self._parents(repo, commit),
        }

    def _ref_json(self, repo: Repo, ref: str, sha: str) -> dict[str, Any]:
        return {
            "ref": ref,
            "node_id": node_id("Ref", f"{repo.id}:{ref}"),
            "url": f"{self._repo_url(repo)}/git/{ref}",
            "object": {"sha": sha, "type": "commit", "url": f"{self._repo_url(repo)}/git/commits/{sha}"},
        }

    def _content_json(
        self, repo: Repo, path: str, ref: str, data: bytes | None, with_content: bool = True
    ) -> dict[str, Any]:
        """A file (`data`; its base64 content only if `with_content`) or, for None, a directory entry."""
        url = f"{self._repo_url(repo)}/contents/{quote(path)}?ref={quote(ref, safe='')}"
        kind, sha = ("dir", git_blob_sha(path.encode())) if data is None else ("file", git_blob_sha(data))
        html = f"{HTML_URL}/{repo.full_name}/{'tree' if data is None else 'blob'}/{quote(ref)}/{quote(path)}"
        git_url = f"{self._repo_url(repo)}/git/{'trees' if data is None else 'blobs'}/{sha}"
        entry = {
            "type": kind,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "size": 0 if data is None else len(data),
            "url": url,
            "html_url": html,
            "git_url": git_url,
            "download_url": None if data is None else
            f"https://raw.githubusercontent.com/{repo.full_name}/{quote(ref)}/{quote(path)}",
            "_links": {"self": url, "git": git_url, "html": html},
        }
        return (
            entry | {"encoding": "base64", "content": base64.b64encode(data).decode()}
            if data is not None and with_content
            else entry
        )

    def _release_json(self, repo: Repo, release: Release) -> dict[str, Any]:
        url = f"{self._repo_url(repo)}/releases/{release.id}"
        return {
            "id": release.id,
            "node_id": node_id("Release", release.id),
            "url": url,
            "assets_url": f"{url}/assets",
            "upload_url": f"https://uploads.github.com/repos/{repo.full_name}/releases/{release.id}/assets{{?name,label}}",
            "html_url": f"{HTML_URL}/{repo.full_name}/releases/tag/{quote(release.tag_name)}",
            "tarball_url": f"{self._repo_url(repo)}/tarball/{quote(release.tag_name)}",
            "zipball_url": f"{self._repo_url(repo)}/zipball/{quote(release.tag_name)}",
            "tag_name": release.tag_name,
            "target_commitish": release.target_commitish,
            "name": release.name,
            "body": release.body,
            "draft": release.draft,
            "prerelease": release.prerelease,
            "immutable": False,
            "author": self._user(release.author),
            "assets": [],
            "created_at": iso(release.created_at),
            "published_at": None if release.draft else iso(release.created_at),
        }

