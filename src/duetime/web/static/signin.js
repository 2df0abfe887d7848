import { authForm } from "./auth.js";

authForm("signin-form", "/api/auth/signin", ["email", "password"]);
